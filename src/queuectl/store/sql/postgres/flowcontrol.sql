-- Named queries of the PostgreSQL store for flow control: the claim under limits and locks, and
-- the limits (store/flowcontrol.py).

-- The claim when a served queue has a limit, a limited batch a job that may start, or a due
-- job a lock. The flow locks the limited queues' rows, then the limited batches'; with
-- concurrency limits only and no job taking a lock, flow_claim_counted then counts and claims
-- in one statement. Otherwise it reads their counts, then picks among four kinds of
-- candidates in claim order: each limited queue's first jobs, each limited batch's, the first
-- job of each free lock, and the rest. SKIP LOCKED alone cannot protect a count, hence the
-- row locks.
-- name: pg_flow_claim_started
-- `flow_claim_counted` and the history rows of the attempts it starts, in one statement: the
-- claim of a runner whose last look found only queues' concurrency limits (`names`), sent in
-- the round trip of its settlements after `flow_lock_queues` (see finish_and_claim).
WITH claimed AS ({flow_claim_counted}),
started AS ({pg_attempts_of_claimed})
SELECT * FROM claimed

-- name: pg_flow_claim_batches_started
-- The same for `flow_claim_batches`: the claim of a runner whose last look found only
-- batches' concurrency limits (`batches`), after `flow_lock_queues` and `flow_lock_batches`.
WITH claimed AS ({flow_claim_batches}),
started AS ({pg_attempts_of_claimed})
SELECT * FROM claimed

-- name: flow_lock_queues
-- FOR UPDATE, in name order: claimers of a limited queue take turns (and cannot deadlock),
-- so each reads the counts the previous one committed, in a later statement: READ COMMITTED
-- gives that one a snapshot holding every claim committed before the lock was ours. Queues
-- without limits are not locked, except those in `names` (the queues a claim sent in the same
-- round trip counts: each is locked before it is counted, even if its limit changed since the
-- runner last looked). The limits come from the locked rows, so they are current; `locks_due`
-- (any job with a lock that may start) and `batches_due` (any job of a limited batch) are only
-- hints for choosing the claim.
SELECT name, paused, concurrency, rate_jobs, rate_ms, {flow_locks_due} AS locks_due,
       EXISTS (SELECT 1 FROM jobs
               WHERE batch_limited AND state IN ('pending', 'failed') AND waiting_on = 0)
           AS batches_due
FROM queues
WHERE ((concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND NOT paused
       OR name = ANY(%(names)s::text[]))
  AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[]))
ORDER BY name
FOR UPDATE OF queues

-- name: flow_locks_due
-- (an expression) Whether a job with a lock may start: only the general claim takes those.
EXISTS (SELECT 1 FROM jobs
        WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0)

-- name: flow_claim_counted
-- The whole claim in one statement when the served limited queues have only concurrency
-- limits and no job takes a lock. The queues with jobs that may start are found by skipping
-- from one queue to the next in jobs_queue_claim (a probe per queue, however long a queue's
-- backlog); each gives its first jobs, a limited queue (`names`) at most its room, a queue
-- with limits not in `names` (paused, or not served) none, locked as found (SKIP LOCKED as in
-- `claim`, which rechecks their state; those beyond the first `want` in claim order stay
-- locked only until commit). Jobs
-- with a lock are left to the general claim. Run after flow_lock_queues, so the counts include
-- every committed claim.
WITH RECURSIVE waiting AS (
    SELECT MIN(queue) AS queue FROM jobs
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
    UNION ALL
    SELECT (SELECT MIN(queue) FROM jobs
            WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
              AND queue > waiting.queue)
    FROM waiting WHERE waiting.queue IS NOT NULL
),
room AS (
    SELECT waiting.queue, CASE
        WHEN waiting.queue = ANY(%(names)s::text[]) AND NOT limits.paused
             AND limits.concurrency IS NOT NULL AND limits.rate_jobs IS NULL
        THEN GREATEST(0, LEAST(
            %(want)s::bigint, limits.concurrency - (
                SELECT COUNT(*) FROM jobs
                WHERE jobs.queue = waiting.queue AND jobs.state = 'processing')
            - (SELECT COUNT(*) FROM jobs AS dying
                 WHERE dying.queue = waiting.queue AND dying.lease_owner IS NOT NULL
                   AND dying.state <> 'processing')))
        WHEN limits.name IS NULL OR NOT (limits.paused OR limits.concurrency IS NOT NULL
                                         OR limits.rate_jobs IS NOT NULL) THEN %(want)s::bigint
        ELSE 0 END AS n
    FROM waiting LEFT JOIN queues AS limits ON limits.name = waiting.queue
    WHERE waiting.queue IS NOT NULL
      AND (%(queues)s::text[] IS NULL OR waiting.queue = ANY(%(queues)s::text[]))
),
heads AS (
    SELECT head.seq, head.priority, head.run_at FROM room CROSS JOIN LATERAL (
        SELECT seq, priority, run_at FROM jobs
        WHERE jobs.queue = room.queue AND state IN ('pending', 'failed') AND waiting_on = 0
          AND NOT scheduled AND lock_key IS NULL
          AND {enforced}  -- limits: only jobs whose every limit this runner enforces
          AND NOT batch_limited  -- left to the general claim, as locks are
          AND (expires_at IS NULL OR expires_at > %(now)s::bigint)  -- expired: see maintenance
          AND {requires_met}
        ORDER BY priority DESC, run_at, seq
        LIMIT room.n
        FOR UPDATE SKIP LOCKED) AS head
),
picked AS (
    SELECT seq FROM heads ORDER BY priority DESC, run_at, seq LIMIT %(want)s::bigint
)
{pg_start_picked}, jobs.lock_key, jobs.max_retries, jobs.no_retry_exit_codes, jobs.batch,
    jobs.batch_limited, jobs.max_retries_set

-- name: flow_claim_batches
-- The whole claim in one statement when limited batches have jobs that may start, no served
-- queue has a limit and no job takes a lock: each limited batch in `batches` (locked by
-- flow_lock_batches) gives its first jobs, at most its room, and the jobs of no limited batch
-- their first `want`, all locked as found (SKIP LOCKED, as in flow_claim_counted); the first
-- `want` of them in claim order are claimed. Only in queues without limits: a limit set since
-- the runner last looked holds all back, and the limits found send it to the general claim.
WITH room AS (
    SELECT name, GREATEST(0, LEAST(%(want)s::bigint, concurrency
        - (SELECT COUNT(*) FROM jobs WHERE jobs.batch = batches.name AND state = 'processing')
        - (SELECT COUNT(*) FROM jobs AS dying
           WHERE dying.lease_owner IS NOT NULL AND dying.state <> 'processing'
             AND dying.batch = batches.name))) AS n
    -- a list the planner cannot count (see dependants_of), as in its generic plan: the plan
    -- is made once, not again at each claim
    FROM batches WHERE name = ANY(ARRAY(SELECT unnest(%(batches)s::text[])))
      AND concurrency IS NOT NULL
),
heads AS (
    SELECT head.* FROM room CROSS JOIN LATERAL (
        SELECT seq, priority, run_at FROM jobs
        WHERE jobs.batch = room.name AND batch_limited AND {flow_claimable}
        ORDER BY priority DESC, run_at, seq LIMIT room.n
        FOR UPDATE SKIP LOCKED) AS head
),
free AS (
    SELECT seq, priority, run_at FROM jobs WHERE NOT batch_limited AND {flow_claimable}
    ORDER BY priority DESC, run_at, seq LIMIT %(want)s::bigint
    FOR UPDATE SKIP LOCKED
),
picked AS (
    SELECT seq FROM (SELECT * FROM heads UNION ALL SELECT * FROM free) AS found
    ORDER BY priority DESC, run_at, seq LIMIT %(want)s::bigint
)
{pg_start_picked}, jobs.lock_key, jobs.max_retries, jobs.no_retry_exit_codes, jobs.batch,
    jobs.batch_limited, jobs.max_retries_set

-- name: flow_claimable
-- (an expression) A job that flow_claim_batches may take: it may start now, takes no lock,
-- is of a served queue with no limit and not paused, not expired (see maintenance), and of
-- this runner's tags; for a runner that enforces every limit (the others: the general claim).
state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled AND lock_key IS NULL
AND queue NOT IN (SELECT name FROM queues
                  WHERE paused OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
AND (expires_at IS NULL OR expires_at > %(now)s::bigint)
AND %(enforces)s::integer = 7 AND {requires_met}

-- name: flow_queues
-- The running count of each limited queue (a statement after the lock, see flow_lock_queues),
-- with the cancelled attempts still dying.
SELECT name, (SELECT COUNT(*) FROM jobs
              WHERE jobs.state = 'processing' AND jobs.queue = queues.name)
             + (SELECT COUNT(*) FROM jobs AS dying
                 WHERE dying.queue = queues.name AND dying.lease_owner IS NOT NULL
                   AND dying.state <> 'processing') AS running
FROM queues WHERE name = ANY(%(names)s::text[])

-- name: flow_window_starts
-- The starts of a rate-limited queue inside the window that ends now, oldest first.
SELECT started_at FROM queue_starts
WHERE queue = %(queue)s AND started_at > %(since)s::bigint
ORDER BY started_at

-- name: flow_prune_starts
DELETE FROM queue_starts WHERE queue = %(queue)s AND started_at <= %(since)s::bigint

-- name: flow_record_start
INSERT INTO queue_starts (queue, started_at) VALUES (%(queue)s, %(now)s::bigint)

-- name: flow_queue_candidates
-- A limited queue's first jobs that may start, skipping those whose lock is held.
SELECT seq, queue, priority, run_at, lock_key FROM jobs
WHERE queue = %(queue)s AND state IN ('pending', 'failed') AND waiting_on = 0
  AND NOT scheduled
  AND NOT batch_limited  -- a limited batch's jobs are flow_batch_candidates
  AND {requires_met}
  AND (lock_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs AS held
      WHERE held.lock_key = jobs.lock_key AND held.lease_owner IS NOT NULL))
  AND {enforced}  -- limits: only jobs whose every limit this runner enforces
ORDER BY priority DESC, run_at, seq
LIMIT %(n)s::bigint

-- name: flow_lock_candidates
-- In queues without limits: the first job of each lock (in claim order), if its lock is free.
SELECT seq, queue, priority, run_at, lock_key FROM (
    SELECT seq, queue, priority, run_at, lock_key,
           ROW_NUMBER() OVER (PARTITION BY lock_key ORDER BY priority DESC, run_at, seq)
               AS place
    FROM jobs
    WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0
      AND NOT scheduled AND NOT batch_limited
      AND queue NOT IN (SELECT name FROM queues
                        WHERE paused OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
      AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
      AND {enforced} AND {requires_met}) AS heads  -- limits this runner enforces, its tags
WHERE place = 1 AND NOT EXISTS (
    SELECT 1 FROM jobs AS held
    WHERE held.lock_key = heads.lock_key AND held.lease_owner IS NOT NULL)
ORDER BY priority DESC, run_at, seq
LIMIT %(want)s::bigint

-- name: flow_free_candidates
-- Jobs with neither a limit nor a lock; SKIP LOCKED as in `claim`.
SELECT seq, queue, priority, run_at, lock_key FROM jobs
WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
  AND lock_key IS NULL AND NOT batch_limited
  AND queue NOT IN (SELECT name FROM queues
                    WHERE paused OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
  AND {enforced}  -- limits: only jobs whose every limit this runner enforces
  AND {requires_met}
ORDER BY priority DESC, run_at, seq
LIMIT %(want)s::bigint
FOR UPDATE SKIP LOCKED

-- name: flow_try_lock
-- Held until commit. A claimer that cannot have the key now skips it (as SKIP LOCKED does):
-- the holder is starting a job of that lock, or deciding not to.
SELECT pg_try_advisory_xact_lock(hashtextextended('queuectl.lock:' || %(key)s, 0)) AS value

-- name: flow_held_locks
-- (after flow_try_lock: a new statement sees what the key's previous claimer committed)
SELECT lock_key FROM jobs WHERE lock_key = ANY(%(keys)s::text[]) AND lease_owner IS NOT NULL

-- name: flow_claim
UPDATE jobs
{start_attempt_set}
WHERE seq = ANY(%(seqs)s::bigint[]) AND state IN ('pending', 'failed')
  AND (expires_at IS NULL OR expires_at > %(now)s::bigint)  -- expired: see maintenance
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          lock_key, max_retries, no_retry_exit_codes, batch, batch_limited, max_retries_set,
          silence_timeout, {claimed_limits}

-- name: flow_settings
-- Every queue's settings (a row exists once a queue was paused or limited).
SELECT name, paused, concurrency, rate_jobs, rate_ms,
       (SELECT COUNT(*) FROM jobs
        WHERE jobs.state = 'processing' AND jobs.queue = queues.name)
       + (SELECT COUNT(*) FROM jobs AS dying
          WHERE dying.queue = queues.name AND dying.lease_owner IS NOT NULL
            AND dying.state <> 'processing') AS running,
       memory, cpus, max_procs
FROM queues ORDER BY name

-- name: flow_set_limits
-- A limit kept is the row's own at this write: two settings at once each keep the other's.
INSERT INTO queues (name, paused, concurrency, rate_jobs, rate_ms)
VALUES (%(name)s, FALSE, %(concurrency)s::integer, %(rate_jobs)s::integer,
        %(rate_ms)s::bigint)
ON CONFLICT (name) DO UPDATE SET
    concurrency = CASE WHEN %(keep_concurrency)s::boolean THEN queues.concurrency
                       ELSE excluded.concurrency END,
    rate_jobs = CASE WHEN %(keep_rate)s::boolean THEN queues.rate_jobs
                     ELSE excluded.rate_jobs END,
    rate_ms = CASE WHEN %(keep_rate)s::boolean THEN queues.rate_ms ELSE excluded.rate_ms END

-- name: set_job_defaults
-- A default kept is the row's own at this write, as flow_set_limits keeps a limit.
INSERT INTO queues (name, paused, memory, cpus, max_procs)
VALUES (%(name)s, FALSE, %(memory)s::bigint, %(cpus)s::double precision,
        %(max_procs)s::integer)
ON CONFLICT (name) DO UPDATE SET
    memory = CASE WHEN %(keep_memory)s::boolean THEN queues.memory ELSE excluded.memory END,
    cpus = CASE WHEN %(keep_cpus)s::boolean THEN queues.cpus ELSE excluded.cpus END,
    max_procs = CASE WHEN %(keep_max_procs)s::boolean THEN queues.max_procs
                     ELSE excluded.max_procs END

-- name: flow_forget_starts
DELETE FROM queue_starts WHERE queue = %(queue)s

-- name: flow_lock_holder
SELECT id AS value FROM jobs WHERE lock_key = %(key)s AND lease_owner IS NOT NULL

-- name: flow_lock_batches
-- The limited batches not finished (few: found through batches_open_limited, however many
-- ended before), and those in `batches` (those a claim sent in the same round trip counts),
-- each with whether it has jobs pending or failed (`waiting`: from its counts, a hint for
-- choosing the claim, as a job of it may wait on another); their rows FOR UPDATE in name order,
-- after the queues' (see flow_lock_queues): claimers of a limited batch take turns, and each
-- counts what the previous one committed, in a later statement. With `locks_due`, as
-- flow_lock_queues has it (there may be no limited queue to say it). Not a skip from batch
-- to batch through the waiting jobs: a store without statistics read them all in a sort.
SELECT name, concurrency,
       EXISTS (SELECT 1 FROM batch_counts
               WHERE batch_counts.batch = batches.name AND state IN ('pending', 'failed')
                 AND n > 0) AS waiting,
       {flow_locks_due} AS locks_due
FROM batches
WHERE name IN (SELECT name FROM batches WHERE concurrency IS NOT NULL AND finished_at IS NULL
               UNION SELECT unnest(%(batches)s::text[]))
  AND concurrency IS NOT NULL
ORDER BY name
FOR UPDATE OF batches

-- name: flow_batches_running
-- What of each locked batch runs now, the cancelled attempts still dying counted.
SELECT name, (SELECT COUNT(*) FROM jobs
              WHERE jobs.batch = batches.name AND jobs.state = 'processing')
             + (SELECT COUNT(*) FROM jobs AS dying
                WHERE dying.lease_owner IS NOT NULL AND dying.state <> 'processing'
                  AND dying.batch = batches.name) AS running
FROM batches WHERE name = ANY(%(names)s::text[])

-- name: flow_batch_candidates
-- A limited batch's first jobs that may start, in the served queues not paused, skipping those
-- whose lock is held, and those whose limits this runner does not enforce or whose tags it
-- lacks.
SELECT seq, queue, priority, run_at, lock_key, batch FROM jobs
WHERE batch = %(batch)s::text AND batch_limited AND state IN ('pending', 'failed')
  AND waiting_on = 0 AND NOT scheduled
  AND queue NOT IN (SELECT name FROM queues WHERE paused)
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
  AND (lock_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs AS held
      WHERE held.lock_key = jobs.lock_key AND held.lease_owner IS NOT NULL))
  AND {enforced}  -- limits: only jobs whose every limit this runner enforces
  AND {requires_met}
ORDER BY priority DESC, run_at, seq
LIMIT %(n)s::bigint
