-- Named queries of the SQLite store for flow control: the claim under limits and locks, and the
-- limits (store/flowcontrol.py).

-- The claim when a served queue has a limit, a limited batch a job that may start, or a due
-- job a lock. The flow reads the limited queues and batches; with concurrency limits only and
-- no job taking a lock, flow_claim_counted claims in one statement. Otherwise it picks among
-- four kinds of candidates in claim order: each limited queue's first jobs, each limited
-- batch's, the first job of each free lock, and the rest.
-- name: flow_lock_queues
-- The limited queues this runner serves, with their limits; SQLite has one writer, so
-- nothing more to lock. `locks_due`: whether any job with a lock may start; `batches_due`:
-- any job of a limited batch.
SELECT name, paused, concurrency, rate_jobs, rate_ms, {flow_locks_due} AS locks_due,
       EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_batch_waiting
               WHERE batch_limited = 1 AND state IN ('pending', 'failed') AND waiting_on = 0)
           AS batches_due
FROM queues
WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND paused = 0
  AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues)))
ORDER BY name

-- name: flow_locks_due
-- (an expression) Whether a job with a lock may start: only the general claim takes those.
EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_lock_waiting
        WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0)

-- name: flow_claim_counted
-- The whole claim in one statement when the served limited queues have only concurrency
-- limits and no job takes a lock. The queues with jobs that may start are found by skipping
-- from one queue to the next in jobs_queue_claim (a probe per queue, however long a queue's
-- backlog); each gives its first jobs (at most `want`, then cut to its room): a limited queue
-- (`names`) its room, a queue with limits not in `names` (paused, or not served) none. The
-- first `want` of them in claim order are claimed. Jobs with a lock are left to the general
-- claim.
WITH RECURSIVE waiting(queue) AS (
    SELECT (SELECT queue FROM jobs INDEXED BY jobs_queue_claim
            WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
            ORDER BY queue LIMIT 1)
    UNION ALL
    SELECT (SELECT queue FROM jobs INDEXED BY jobs_queue_claim
            WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
              AND queue > waiting.queue
            ORDER BY queue LIMIT 1)
    FROM waiting WHERE waiting.queue IS NOT NULL
),
room AS (
    SELECT waiting.queue AS queue, CASE
        WHEN waiting.queue IN (SELECT value FROM json_each(:names)) THEN MAX(0, MIN(
            :want, limits.concurrency - (
                SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_queue_state
                WHERE jobs.queue = waiting.queue AND jobs.state = 'processing') - (
                SELECT COUNT(*) FROM jobs AS dying INDEXED BY jobs_dying
                WHERE dying.queue = waiting.queue AND dying.lease_owner IS NOT NULL
                  AND dying.state <> 'processing')))
        WHEN limits.name IS NULL OR NOT (limits.paused = 1 OR limits.concurrency IS NOT NULL
                                         OR limits.rate_jobs IS NOT NULL) THEN :want
        ELSE 0 END AS n
    FROM waiting LEFT JOIN queues AS limits ON limits.name = waiting.queue
    WHERE waiting.queue IS NOT NULL
      AND (:queues IS NULL OR waiting.queue IN (SELECT value FROM json_each(:queues)))
),
heads AS (
    SELECT jobs.seq, jobs.priority, jobs.run_at, room.n,
           ROW_NUMBER() OVER (PARTITION BY room.queue ORDER BY priority DESC, run_at, seq)
               AS place
    FROM room JOIN jobs ON jobs.seq IN (
        SELECT seq FROM jobs AS head INDEXED BY jobs_queue_claim
        WHERE head.queue = room.queue AND state IN ('pending', 'failed') AND waiting_on = 0
          AND scheduled = 0 AND lock_key IS NULL
          AND {enforced}  -- limits: only jobs whose every limit this runner enforces
          AND batch_limited = 0  -- left to the general claim, as locks are
          AND {requires_met}
        ORDER BY priority DESC, run_at, seq
        LIMIT :want)
    WHERE room.n > 0
),
picked AS (
    SELECT seq FROM heads WHERE place <= n ORDER BY priority DESC, run_at, seq LIMIT :want
)
{sqlite_flow_start_picked}

-- name: flow_claim_batches
-- The whole claim in one statement when limited batches have jobs that may start, no served
-- queue has a limit and no job takes a lock: each limited batch in `batches` gives its first
-- jobs (at most `want`, then cut to its room), and the jobs of no limited batch their first
-- `want`; the first `want` of them in claim order are claimed. Only in queues without
-- limits: a limit set since the runner last looked holds all back, and the limits found send
-- it to the general claim.
WITH room AS (
    SELECT name, MAX(0, MIN(:want, concurrency - (
        SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_batch
        WHERE jobs.batch = batches.name AND jobs.state = 'processing') - (
        SELECT COUNT(*) FROM jobs AS dying INDEXED BY jobs_dying
        WHERE dying.lease_owner IS NOT NULL AND dying.state <> 'processing'
          AND dying.batch = batches.name))) AS n
    FROM batches
    WHERE name IN (SELECT value FROM json_each(:batches)) AND concurrency IS NOT NULL
),
heads AS (
    SELECT jobs.seq, jobs.priority, jobs.run_at, room.n,
           ROW_NUMBER() OVER (PARTITION BY room.name ORDER BY priority DESC, run_at, seq)
               AS place
    FROM room JOIN jobs ON jobs.seq IN (
        SELECT seq FROM jobs AS head INDEXED BY jobs_batch_waiting
        WHERE head.batch = room.name AND batch_limited = 1 AND {flow_claimable}
        ORDER BY priority DESC, run_at, seq
        LIMIT :want)
    WHERE room.n > 0
    UNION ALL
    SELECT seq, priority, run_at, 1, 1 FROM (
        SELECT seq, priority, run_at FROM jobs INDEXED BY jobs_free_claim
        WHERE batch_limited = 0 AND {flow_claimable}
        ORDER BY priority DESC, run_at, seq
        LIMIT :want)
),
picked AS (
    SELECT seq FROM heads WHERE place <= n ORDER BY priority DESC, run_at, seq LIMIT :want
)
{sqlite_flow_start_picked}

-- name: flow_claimable
-- (an expression) A job that flow_claim_batches may take: it may start now, takes no lock,
-- is of a served queue with no limit and not paused, not expired (see maintenance), and of
-- this runner's tags; for a runner that enforces every limit (the others: the general claim).
state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0 AND lock_key IS NULL
AND queue NOT IN (SELECT name FROM queues
                  WHERE paused = 1 OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
AND (expires_at IS NULL OR expires_at > :now)
AND :enforces = 7 AND {requires_met}

-- name: flow_queues
-- The running count of each limited queue, with the cancelled attempts still dying.
SELECT name, (SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_queue_state
              WHERE jobs.queue = queues.name AND jobs.state = 'processing')
             + (SELECT COUNT(*) FROM jobs AS dying INDEXED BY jobs_dying
                 WHERE dying.queue = queues.name AND dying.lease_owner IS NOT NULL
                   AND dying.state <> 'processing') AS running
FROM queues WHERE name IN (SELECT value FROM json_each(:names))

-- name: flow_window_starts
-- The starts of a rate-limited queue inside the window that ends now, oldest first.
SELECT started_at FROM queue_starts WHERE queue = :queue AND started_at > :since
ORDER BY started_at

-- name: flow_prune_starts
DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :since

-- name: flow_record_start
INSERT INTO queue_starts (queue, started_at) VALUES (:queue, :now)

-- name: flow_queue_candidates
-- A limited queue's first jobs that may start, skipping those whose lock is held.
SELECT seq, queue, priority, run_at, lock_key FROM jobs INDEXED BY jobs_queue_claim
WHERE queue = :queue AND state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
  AND batch_limited = 0  -- a limited batch's jobs are flow_batch_candidates
  AND {requires_met}
  AND (lock_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs AS held
      WHERE held.lock_key = jobs.lock_key AND held.lock_key IS NOT NULL
        AND held.lease_owner IS NOT NULL))
  AND {enforced}  -- limits: only jobs whose every limit this runner enforces
ORDER BY priority DESC, run_at, seq
LIMIT :n

-- name: flow_lock_candidates
-- In queues without limits: the first job of each lock (in claim order), if its lock is free.
SELECT seq, queue, priority, run_at, lock_key FROM (
    SELECT seq, queue, priority, run_at, lock_key,
           ROW_NUMBER() OVER (PARTITION BY lock_key ORDER BY priority DESC, run_at, seq)
               AS place
    FROM jobs INDEXED BY jobs_lock_waiting
    WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0
      AND scheduled = 0 AND batch_limited = 0
      AND queue NOT IN (SELECT name FROM queues
                        WHERE paused = 1 OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
      AND {enforced} AND {requires_met}) AS heads  -- limits this runner enforces, its tags
WHERE place = 1 AND NOT EXISTS (
    SELECT 1 FROM jobs AS held
    WHERE held.lock_key = heads.lock_key AND held.lock_key IS NOT NULL
      AND held.lease_owner IS NOT NULL)
ORDER BY priority DESC, run_at, seq
LIMIT :want

-- name: flow_free_candidates
-- Jobs with neither a limit nor a lock.
SELECT seq, queue, priority, run_at, lock_key FROM jobs INDEXED BY jobs_free_claim
WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
  AND lock_key IS NULL AND batch_limited = 0
  AND queue NOT IN (SELECT name FROM queues
                    WHERE paused = 1 OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND {enforced}  -- limits: only jobs whose every limit this runner enforces
  AND {requires_met}
ORDER BY priority DESC, run_at, seq
LIMIT :want

-- name: flow_try_lock
-- Claims are serial on SQLite: a lock key is always ours to check.
SELECT 1 AS value WHERE :key IS NOT NULL

-- name: flow_held_locks
SELECT lock_key FROM jobs INDEXED BY jobs_lock_held
WHERE lock_key IN (SELECT value FROM json_each(:keys)) AND lease_owner IS NOT NULL

-- name: flow_claim
UPDATE jobs
{start_attempt_set}
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND state IN ('pending', 'failed')
  AND (expires_at IS NULL OR expires_at > :now)  -- expired: cancelled by maintenance
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          lock_key, max_retries, no_retry_exit_codes, batch, batch_limited, max_retries_set,
          silence_timeout, {claimed_limits}

-- name: flow_settings
-- Every queue's settings (a row exists once a queue was paused or limited).
SELECT name, paused, concurrency, rate_jobs, rate_ms,
       (SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_queue_state
        WHERE state = 'processing' AND jobs.queue = queues.name)
       + (SELECT COUNT(*) FROM jobs AS dying INDEXED BY jobs_dying
          WHERE dying.queue = queues.name AND dying.lease_owner IS NOT NULL
            AND dying.state <> 'processing') AS running,
       memory, cpus, max_procs
FROM queues ORDER BY name

-- name: flow_set_limits
-- A limit kept is the row's own at this write: two settings at once each keep the other's.
INSERT INTO queues (name, paused, concurrency, rate_jobs, rate_ms)
VALUES (:name, 0, :concurrency, :rate_jobs, :rate_ms)
ON CONFLICT (name) DO UPDATE SET
    concurrency = CASE WHEN :keep_concurrency THEN queues.concurrency
                       ELSE excluded.concurrency END,
    rate_jobs = CASE WHEN :keep_rate THEN queues.rate_jobs ELSE excluded.rate_jobs END,
    rate_ms = CASE WHEN :keep_rate THEN queues.rate_ms ELSE excluded.rate_ms END

-- name: set_job_defaults
-- A default kept is the row's own at this write, as flow_set_limits keeps a limit.
INSERT INTO queues (name, paused, memory, cpus, max_procs)
VALUES (:name, 0, :memory, :cpus, :max_procs)
ON CONFLICT (name) DO UPDATE SET
    memory = CASE WHEN :keep_memory THEN queues.memory ELSE excluded.memory END,
    cpus = CASE WHEN :keep_cpus THEN queues.cpus ELSE excluded.cpus END,
    max_procs = CASE WHEN :keep_max_procs THEN queues.max_procs ELSE excluded.max_procs END

-- name: flow_forget_starts
DELETE FROM queue_starts WHERE queue = :queue

-- name: flow_lock_holder
SELECT id AS value FROM jobs INDEXED BY jobs_lock_held
WHERE lock_key = :key AND lease_owner IS NOT NULL

-- name: flow_lock_batches
-- The limited batches with a job that may start (`waiting`), found by skipping from one batch
-- to the next in jobs_batch_waiting (a probe per batch, however many jobs each has waiting),
-- and those in `batches`, with their limits; SQLite has one writer, so nothing more to lock.
-- With `locks_due`, as flow_lock_queues has it (there may be no limited queue to say it).
WITH RECURSIVE waiting(batch) AS (
    SELECT (SELECT batch FROM jobs INDEXED BY jobs_batch_waiting
            WHERE batch_limited = 1 AND state IN ('pending', 'failed') AND waiting_on = 0
            ORDER BY batch LIMIT 1)
    UNION ALL
    SELECT (SELECT batch FROM jobs INDEXED BY jobs_batch_waiting
            WHERE batch_limited = 1 AND state IN ('pending', 'failed') AND waiting_on = 0
              AND batch > waiting.batch
            ORDER BY batch LIMIT 1)
    FROM waiting WHERE waiting.batch IS NOT NULL
)
SELECT name, concurrency,
       name IN (SELECT batch FROM waiting WHERE batch IS NOT NULL) AS waiting,
       {flow_locks_due} AS locks_due
FROM batches
WHERE name IN (SELECT batch FROM waiting WHERE batch IS NOT NULL
               UNION SELECT value FROM json_each(:batches))
  AND concurrency IS NOT NULL
ORDER BY name

-- name: flow_batches_running
-- What of each batch named runs now, the cancelled attempts still dying counted.
SELECT name, (SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_batch
              WHERE jobs.batch = batches.name AND jobs.state = 'processing')
             + (SELECT COUNT(*) FROM jobs AS dying INDEXED BY jobs_dying
                WHERE dying.lease_owner IS NOT NULL AND dying.state <> 'processing'
                  AND dying.batch = batches.name) AS running
FROM batches WHERE name IN (SELECT value FROM json_each(:names))

-- name: flow_batch_candidates
-- A limited batch's first jobs that may start, in the served queues not paused, skipping those
-- whose lock is held, and those whose limits this runner does not enforce or whose tags it
-- lacks.
SELECT seq, queue, priority, run_at, lock_key, batch FROM jobs INDEXED BY jobs_batch_waiting
WHERE batch = :batch AND batch_limited = 1 AND state IN ('pending', 'failed')
  AND waiting_on = 0 AND scheduled = 0
  AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (lock_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs AS held
      WHERE held.lock_key = jobs.lock_key AND held.lock_key IS NOT NULL
        AND held.lease_owner IS NOT NULL))
  AND {enforced}  -- limits: only jobs whose every limit this runner enforces
  AND {requires_met}
ORDER BY priority DESC, run_at, seq
LIMIT :n

-- name: sqlite_flow_start_picked
-- The end of the flow claims that pick their jobs in a CTE `picked` (seq): those still
-- waiting and not expired start an attempt; each is returned with its limits.
UPDATE jobs
{start_attempt_set}
WHERE seq IN (SELECT seq FROM picked) AND state IN ('pending', 'failed')
  AND (expires_at IS NULL OR expires_at > :now)  -- expired: cancelled by maintenance
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          lock_key, max_retries, no_retry_exit_codes, batch, batch_limited, max_retries_set,
          silence_timeout, {claimed_limits}
