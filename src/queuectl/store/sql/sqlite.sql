-- Named queries of the SQLite store; each name matches a step of a flow in store/core.py.
-- Instants are epoch milliseconds.

-- name: job_columns
seq, id, command, state, queue, priority, attempts, max_retries, timeout, run_at, depends_on,
no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at, started_at, finished_at,
exit_code, last_error, duration_ms, lease_owner, lease_expires_at, lock_key, made_by

-- name: insert_jobs
-- A batch with no unique_key and no dependency: nothing to decide, rows go straight in.
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: sqlite_insert_jobs_shared
-- Rows of insert_jobs that differ only in id and command, as most of a bulk enqueue's do: the
-- other columns bound once for the statement, the store repeating the (id, command) pair after
-- VALUES once per row. Binding a parameter costs about what storing its value does, so this
-- halves the cost of such a row. The rows go in the order of the VALUES list.
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key)
SELECT column1, column2, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
FROM (VALUES (?, ?))

-- name: sqlite_count_inserted
-- Jobs just inserted, added to the counters once per batch (migration 0007): how many went
-- into each queue and state. New jobs have no attempts yet.
INSERT INTO job_counts (queue, state, n, attempts) VALUES (?, ?, ?, 0)
ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n

-- name: sqlite_count_inserted_ids
-- The same for jobs just inserted under these new ids (a JSON list), where an insert may have
-- been skipped (a hook job whose unique_key is held): the rows say which went in.
INSERT INTO job_counts (queue, state, n, attempts)
SELECT queue, state, COUNT(*), 0 FROM jobs WHERE id IN (SELECT value FROM json_each(?))
GROUP BY queue, state
ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n

-- name: sqlite_count_enqueued
-- The same batch added to the counters that only go up (migration 0012): the jobs enqueued
-- into each queue, in each state (cancelled: a dependency had failed).
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
VALUES (?, 'enqueued', '', ?, 0, ?, 0)
ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE SET n = n + excluded.n

-- name: sqlite_count_enqueued_ids
-- The same for jobs just inserted under these new ids, as sqlite_count_inserted_ids.
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
SELECT queue, 'enqueued', '', state, 0, COUNT(*), 0 FROM jobs
WHERE id IN (SELECT value FROM json_each(?))
GROUP BY queue, state
ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE SET n = n + excluded.n

-- name: insert_job
-- A job whose unique_key an active job holds is not inserted (no row returned): the caller
-- then looks up the holder. The index predicate makes this the arbiter of the conflict.
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING
RETURNING seq

-- name: insert_dep
INSERT OR IGNORE INTO job_deps (dep_id, job_id) VALUES (?, ?)

-- name: find_unique
SELECT id FROM jobs WHERE unique_key = ? AND state IN ('pending', 'processing', 'failed')

-- name: dep_states
SELECT id, state FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: jobs_by_ids
SELECT {job_columns} FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = ?

-- name: ids_from
-- Ids in [lo, hi), in order: the ids starting with a prefix (SQLite compares bytes).
SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?

-- name: list_jobs
-- One query per filter combination, each walking its own index newest first (migration
-- 0004): a filter that matches few of a million jobs reads only those.
SELECT {job_columns} FROM jobs
WHERE seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_state
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_state
WHERE state = :state AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_queue
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_queue
WHERE queue = :queue AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_queue_state
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_queue_state
WHERE queue = :queue AND state = :state AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: promote_due
-- Scheduled jobs whose time has come join the claim index (see migration 0002).
UPDATE jobs INDEXED BY jobs_scheduled SET scheduled = 0
WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at <= ?

-- name: claim
-- The claim when no flow control applies: no queue served has a limit and no job that may
-- start holds a lock (else it takes nothing and the core claims through `flow_*` instead).
-- A job not `scheduled` is due, whatever its run_at: this process's clock may run a few ms
-- behind its enqueuer's (another host's, or before a step), and must not hold it back.
UPDATE jobs
SET state = 'processing', attempts = attempts + 1, token = token + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, started_at = :now, updated_at = :now
WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_claim
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
      AND NOT EXISTS (
          SELECT 1 FROM queues
          WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND paused = 0
            AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues))))
      AND NOT EXISTS (
          SELECT 1 FROM jobs INDEXED BY jobs_lock_waiting
          WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0)
    ORDER BY priority DESC, run_at, seq
    LIMIT :want)
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          max_retries, no_retry_exit_codes

-- name: startable
-- (an expression) Whether a job of the served queues (`queues`, NULL: every queue) may start
-- now, flow control aside: due, waiting on nothing, its queue not paused.
EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_claim
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues))))

-- name: flow_held_back
-- Whether flow control may hold back a job that `claim` took nothing of: a job of the served
-- queues may start, and a served queue has a limit or a job that may start holds a lock (the
-- claim's own conditions). If not, the claim's empty answer is the whole answer. Asked in
-- the claim's transaction: with one writer, it sees what the claim saw.
SELECT (EXISTS (
            SELECT 1 FROM queues
            WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND paused = 0
              AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues))))
        OR EXISTS (
            SELECT 1 FROM jobs INDEXED BY jobs_lock_waiting
            WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0))
       AND {startable} AS value

-- name: fenced_jobs
-- The attempts still ours among those named; the caller compares each claim's token.
-- has_dependants spares the update of dependants when there are none (the common case).
SELECT id, attempts, token, max_retries, no_retry_exit_codes,
       EXISTS (SELECT 1 FROM job_deps WHERE dep_id = jobs.id) AS has_dependants
FROM jobs
WHERE id IN (SELECT value FROM json_each(?)) AND state = 'processing' AND lease_owner = ?

-- name: settle_job
UPDATE jobs
SET state = :state, run_at = COALESCE(:run_at, run_at), scheduled = COALESCE(:run_at > :now, 0),
    finished_at = :finished_at, exit_code = :exit_code, last_error = :last_error,
    duration_ms = COALESCE(:duration_ms, MAX(0, :finished_at - started_at)),
    updated_at = :now, lease_owner = NULL, lease_expires_at = NULL
WHERE id = :id AND state = 'processing' AND lease_owner = :owner AND token = :token

-- name: release_job
UPDATE jobs
SET state = 'pending', attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
    scheduled = 0, updated_at = :now
WHERE id = :id AND state = 'processing' AND lease_owner = :owner AND token = :token

-- name: let_go
-- The processes of an attempt no longer processing (cancelled) are gone, as its runner says
-- (or its runner is gone): its lease, which held its lock and its queue's slot, is let go. A
-- job run again meanwhile waited on this (see `requeue`): it may start now.
UPDATE jobs
SET lease_owner = NULL, lease_expires_at = NULL,
    waiting_on = waiting_on - (state IN ('pending', 'failed'))
WHERE id = :id AND lease_owner = :owner AND token = :token AND state <> 'processing'

-- name: start_attempt
-- The history entry of an attempt just claimed; its host is the claiming runner's.
INSERT INTO attempts (job_id, attempt, token, runner, host, started_at)
VALUES (:id, :attempt, :token, :owner, (SELECT host FROM runners WHERE id = :owner), :now)

-- name: finish_attempt
-- The entry of this claim of the job, if still open. A null output keeps what the live copy
-- saved.
UPDATE attempts
SET finished_at = :finished_at, exit_code = :exit_code, error = :error,
    duration_ms = COALESCE(:duration_ms, MAX(0, :finished_at - started_at)),
    output = COALESCE(:output, output), output_dropped = COALESCE(:dropped, output_dropped)
WHERE job_id = :id AND token = :token AND finished_at IS NULL

-- name: drop_attempt
-- An attempt given back by a stopping runner is not history: its number is used again.
DELETE FROM attempts WHERE job_id = :id AND token = :token AND finished_at IS NULL

-- name: close_attempt
-- A running attempt cancelled: it ends now.
UPDATE attempts
SET finished_at = :now, error = 'cancelled', duration_ms = MAX(0, :now - started_at)
WHERE seq = (SELECT MAX(seq) FROM attempts WHERE job_id = :id) AND finished_at IS NULL

-- name: save_live_output
-- Fenced: only while the attempt still runs under this runner, so a runner that resumes after
-- losing its job cannot overwrite a newer attempt's output, nor one of a job deleted meanwhile;
-- or, from the runner that ran it, once it was cancelled while it ran (what it printed before
-- it was killed, which no settlement writes).
UPDATE attempts SET output = :data, output_dropped = :dropped
WHERE job_id = :id AND token = :token AND runner = :owner
  AND (finished_at IS NULL
       AND EXISTS (SELECT 1 FROM jobs WHERE id = :id AND state = 'processing'
                                        AND lease_owner = :owner AND token = :token)
       OR error = 'cancelled')

-- name: last_output
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = ? ORDER BY seq DESC LIMIT 1

-- name: nth_output
-- The job's n-th attempt of all it ever made (a requeue starts attempt numbers again).
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = :id ORDER BY seq LIMIT 1 OFFSET :n - 1

-- name: history
SELECT attempt, runner, host, started_at, finished_at, exit_code, error, duration_ms,
       token
FROM attempts WHERE job_id = ? ORDER BY seq

-- name: unblock_dependants
-- Dependants of the jobs that just completed (a JSON list) wait on that many fewer.
-- (`+state`: the planner must go through job_deps, not scan every pending job)
UPDATE jobs
SET waiting_on = waiting_on - (
    SELECT COUNT(*) FROM job_deps
    WHERE job_deps.job_id = jobs.id AND job_deps.dep_id IN (SELECT value FROM json_each(:ids)))
WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id IN (SELECT value FROM json_each(:ids)))
  AND +state = 'pending' AND waiting_on > 0

-- name: dependants_of
-- The edges from the jobs named (a JSON list) to their dependants.
SELECT dep_id, job_id FROM job_deps WHERE dep_id IN (SELECT value FROM json_each(?))

-- name: cancel_dependants
-- Dependants cancelled because a dependency ended `state` (dead or cancelled): `doomed` maps
-- each to the job it names as the reason (a JSON object). Those still pending or failed are
-- returned, for the hooks on `cancelled` and the next step of the cascade. (`+state`: each
-- row is found by its id, not by a walk of every pending job.)
UPDATE jobs
SET state = 'cancelled', last_error = 'dependency ' || doomed.value || ' is ' || :state,
    finished_at = :now, updated_at = :now
FROM json_each(:doomed) AS doomed
WHERE jobs.id = doomed.key AND +jobs.state IN ('pending', 'failed')
RETURNING id, queue, attempts, exit_code, last_error, made_by

-- name: owned_jobs
-- The attempts whose processes the runner may still have: running, or cancelled and dying;
-- with the attempt number their processes carry (a requeued job's own starts again).
SELECT jobs.id, attempts.attempt AS attempts FROM jobs
JOIN attempts ON attempts.job_id = jobs.id AND attempts.token = jobs.token
WHERE jobs.lease_owner = :owner AND jobs.state = 'processing'
UNION ALL
SELECT jobs.id, attempts.attempt FROM jobs INDEXED BY jobs_dying
JOIN attempts ON attempts.job_id = jobs.id AND attempts.token = jobs.token
WHERE jobs.lease_owner = :owner AND jobs.lease_owner IS NOT NULL AND jobs.state <> 'processing'

-- name: expired_dying
-- Attempts cancelled while they ran whose runner is gone (`owners`) or stopped renewing
-- their lease: nobody is left to say their processes are gone.
SELECT id, token, lease_owner FROM jobs INDEXED BY jobs_dying
WHERE lease_owner IS NOT NULL AND state <> 'processing'
  AND (lease_owner IN (SELECT value FROM json_each(:owners))
       OR lease_expires_at < :now AND lease_owner NOT IN (SELECT value FROM json_each(:exclude)))

-- name: expired_jobs
-- A runner never reaps its own leases, nor a live local runner's (`exclude`): they renew them.
SELECT id, attempts, token, lease_owner FROM jobs
WHERE state = 'processing' AND lease_expires_at < :now
  AND lease_owner NOT IN (SELECT value FROM json_each(:exclude))

-- name: housekeeping
-- What a runner's housekeeping reads, in one statement: the jobs leased to it; every
-- registered runner, itself included (its stop request; whether it is registered still);
-- (with their claims' tokens); whether another runner's lease expired (a dying attempt's
-- too: a runner gone without a word leaves it, and nothing else would reap it); the next
-- schedule slot; whether a job of its queues may start (the fallback poll, for a lost
-- wakeup); the configuration; `deltas` is PostgreSQL's (SQLite updates its counters in place).
SELECT
    (SELECT json_group_array(json_array(id, token)) FROM jobs
     WHERE lease_owner = :owner AND state = 'processing') AS owned,
    (SELECT json_group_array(json_object(
        'id', id, 'host', host, 'pid', pid, 'pid_started', pid_started, 'workers', workers,
        'queues', json(queues), 'started_at', started_at, 'heartbeat_at', heartbeat_at,
        'stop_requested', stop_requested)) FROM runners) AS runners,
    EXISTS (SELECT 1 FROM jobs
            WHERE state = 'processing' AND lease_expires_at < :now
              AND lease_owner <> :owner)
    OR EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_dying
               WHERE lease_owner IS NOT NULL AND state <> 'processing'
                 AND lease_expires_at < :now AND lease_owner <> :owner) AS expired,
    (SELECT MIN(next_at) FROM schedules) AS next_schedule,
    {startable} OR EXISTS (
        SELECT 1 FROM jobs INDEXED BY jobs_scheduled
        WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at <= :now
          AND waiting_on = 0 AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
          AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues))))
        AS startable,
    (SELECT json_group_object(key, json(value)) FROM config) AS config,
    0 AS deltas

-- name: next_due
SELECT MIN(run_at) AS value FROM jobs INDEXED BY jobs_scheduled
WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at > ?

-- name: cancel_job
-- (SET expressions see the row as it was: a running job's duration ends now.) A running
-- job keeps its lease until its runner says its processes are gone (see let_go).
UPDATE jobs
SET state = 'cancelled', last_error = 'cancelled', finished_at = :now, updated_at = :now,
    duration_ms = CASE WHEN state = 'processing' THEN MAX(0, :now - started_at)
                       ELSE duration_ms END
WHERE id = :id AND state IN ('pending', 'failed', 'processing')

-- name: cancel_waiting
-- Jobs that are not running (a JSON list) cancelled in one statement: nothing of theirs runs
-- to be killed or closed. Those still pending or failed are returned. (`+state`: by id.)
UPDATE jobs
SET state = 'cancelled', last_error = 'cancelled', finished_at = :now, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN ('pending', 'failed')
RETURNING id

-- name: locked_jobs
-- The jobs named (a JSON list), to change in this transaction; SQLite has one writer, so
-- nothing more to lock.
SELECT {job_columns} FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: newest_seq
SELECT COALESCE(MAX(seq), 0) AS value FROM jobs

-- name: bulk_batch
-- The next jobs of a bulk change in one state, oldest first: after a cursor (`after`), up to
-- the newest job when the change began (`upto`). Each batch walks on from where the last one
-- ended, so the whole change reads each job once.
SELECT id, seq FROM jobs INDEXED BY jobs_by_state
WHERE state = :state AND seq > :after AND seq <= :upto
ORDER BY seq LIMIT :batch

-- name: bulk_batch_of_queue
SELECT id, seq FROM jobs INDEXED BY jobs_by_queue_state
WHERE queue = :queue AND state = :state AND seq > :after AND seq <= :upto
ORDER BY seq LIMIT :batch

-- name: dependencies_of
-- The dependencies that the jobs named (a JSON list) still have, by their edges, with their
-- states: a dependency deleted since took its edges with it, and is none any more, whatever
-- job holds its id now.
SELECT job_deps.job_id, jobs.id AS dep_id, jobs.state
FROM job_deps JOIN jobs ON jobs.id = job_deps.dep_id
WHERE job_deps.job_id IN (SELECT value FROM json_each(?))

-- name: locked_dependencies_of
-- The same, read to count what a job run again waits on (SQLite has one writer).
{dependencies_of}

-- name: requeue
-- Finished jobs run again from their first attempt; their history stays. `jobs` maps each to
-- its `waiting_on`: its dependencies not completed now (see SQLStore._requeue_waiting), and
-- one more while the processes of its cancelled attempt still live (their lease held; see
-- let_go). Those
-- still in `states` are returned. (`+state`: each row found by its id.)
UPDATE jobs
SET state = 'pending', attempts = 0, run_at = :now, scheduled = 0, updated_at = :now,
    started_at = NULL, finished_at = NULL, exit_code = NULL, last_error = NULL,
    duration_ms = NULL, waiting_on = again.value + (lease_owner IS NOT NULL)
FROM json_each(:jobs) AS again
WHERE jobs.id = again.key AND +jobs.state IN (SELECT value FROM json_each(:states))
RETURNING id

-- name: expire_finished
-- One small batch of the oldest jobs in these states that finished in [since, before), so
-- enqueues and claims never wait long; when each finished, so that the next batch starts
-- there (retention starts from 0, and its batches are few). A cancelled job whose attempt still dies is kept
-- (its lease holds its lock and slot until its processes are gone).
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_finished
    WHERE finished_at < :before AND finished_at >= :since AND finished_at IS NOT NULL
      AND +state IN (SELECT value FROM json_each(:states)) AND lease_owner IS NULL
    ORDER BY finished_at
    LIMIT :batch)
RETURNING finished_at

-- name: counts
-- Jobs and attempts per queue and state, from the counters of migration 0004 (`deltas`:
-- PostgreSQL's not yet compacted; SQLite updates its counters in place).
SELECT queue, state, n, attempts, 0 AS deltas FROM job_counts WHERE n > 0

-- name: counters
-- The counters that only go up (migration 0012), one row each; `deltas` as in `counts`.
SELECT queue, what, outcome, state, bound_ms, n, total_ms, 0 AS deltas FROM counters

-- name: done_since
SELECT COUNT(*) AS value FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= ? AND finished_at IS NOT NULL AND +state = 'completed'

-- name: config_all
SELECT key, value FROM config

-- name: config_set
INSERT INTO config (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: queues
SELECT name, paused FROM queues

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- name: register_runner
INSERT OR REPLACE INTO runners (id, host, pid, pid_started, workers, queues, started_at,
                                heartbeat_at, stop_requested)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)

-- name: beat_runner
UPDATE runners SET heartbeat_at = ? WHERE id = ? RETURNING stop_requested

-- name: renew_leases
UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'processing'

-- name: renew_dying
-- The leases of this runner's cancelled attempts whose processes it is still killing.
UPDATE jobs INDEXED BY jobs_dying SET lease_expires_at = ?
WHERE lease_owner = ? AND lease_owner IS NOT NULL AND state <> 'processing'

-- name: unregister_runner
DELETE FROM runners WHERE id = ?

-- name: runners
SELECT id, host, pid, pid_started, workers, queues, started_at, heartbeat_at, stop_requested
FROM runners ORDER BY started_at

-- name: running_jobs
SELECT lease_owner, id FROM jobs WHERE state = 'processing' ORDER BY lease_owner, started_at

-- name: request_stop
UPDATE runners SET stop_requested = 1

-- name: withdraw_stop
UPDATE runners SET stop_requested = 0 WHERE stop_requested = 1

-- name: jobs_of_owner
SELECT id, attempts, token FROM jobs WHERE state = 'processing' AND lease_owner = ?

-- name: upsert_schedule
INSERT INTO schedules (name, cron, every_s, tz, job, created_at, last_at, next_at)
VALUES (:name, :cron, :every_s, :tz, :job, :now, NULL, :next_at)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, every_s = excluded.every_s,
    tz = excluded.tz, job = excluded.job, created_at = excluded.created_at,
    next_at = excluded.next_at

-- name: delete_schedule
DELETE FROM schedules WHERE name = ?

-- name: schedules
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules ORDER BY name

-- name: due_schedules
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules
WHERE next_at <= ? ORDER BY next_at

-- name: advance_schedule
UPDATE schedules SET last_at = :now, next_at = :next_at WHERE name = :name

-- name: next_schedule
SELECT MIN(next_at) AS value FROM schedules

-- name: savepoint
SAVEPOINT fire

-- name: release_savepoint
RELEASE SAVEPOINT fire

-- name: rollback_savepoint
ROLLBACK TO SAVEPOINT fire

-- name: verify
-- `init` reads the whole file's structure, so corruption is named now rather than met later.
PRAGMA quick_check

-- name: finished_per_minute
-- Attempts that ended since the minute of an instant, per minute and outcome (failed: those
-- that will be retried), from the rows kept as they ended (migration 0009).
SELECT minute, state, SUM(n) AS n FROM finished_minutes
WHERE minute >= :since / 60000
GROUP BY minute, state

-- name: recent_durations
-- The durations of the attempts that ended since the minute of an instant, per queue and
-- bucket (bound_ms: -1 none recorded, -2 longer than every bound).
SELECT queue, bound_ms, SUM(n) AS n, SUM(total_ms) AS total_ms FROM finished_minutes
WHERE minute >= :since / 60000 AND bound_ms <> -1
GROUP BY queue, bound_ms

-- name: forget_finished_minutes
-- The rows of minutes no read looks at any more.
DELETE FROM finished_minutes WHERE minute < :since / 60000

-- name: oldest_due
-- Per queue, the earliest run_at of the jobs that may start now: one probe of the
-- jobs_ready index per queue that has pending or failed jobs.
SELECT queue, run_at FROM (
    SELECT names.queue, (
        SELECT run_at FROM jobs INDEXED BY jobs_ready
        WHERE jobs.queue = names.queue AND state IN ('pending', 'failed') AND waiting_on = 0
          AND run_at <= :now
        ORDER BY run_at LIMIT 1) AS run_at
    FROM job_counts AS names
    WHERE names.state IN ('pending', 'failed') AND names.n > 0
    GROUP BY names.queue)
WHERE run_at IS NOT NULL

-- Flow control (SPEC 9.2): the claim when a served queue has a limit or a due job a lock.
-- The core reads the limited queues; with concurrency limits only and no job taking a lock,
-- flow_claim_counted claims in one statement. Otherwise it picks among three kinds of
-- candidates in claim order: each limited queue's first jobs, the first job of each free
-- lock, and the rest.

-- name: flow_lock_queues
-- The limited queues this runner serves, with their limits; SQLite has one writer, so
-- nothing more to lock. `locks_due`: whether any job with a lock may start.
SELECT name, paused, concurrency, rate_jobs, rate_ms,
       EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_lock_waiting
               WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed')
                 AND waiting_on = 0) AS locks_due
FROM queues
WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND paused = 0
  AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues)))
ORDER BY name

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
        ORDER BY priority DESC, run_at, seq
        LIMIT :want)
    WHERE room.n > 0
),
picked AS (
    SELECT seq FROM heads WHERE place <= n ORDER BY priority DESC, run_at, seq LIMIT :want
)
UPDATE jobs
SET state = 'processing', attempts = attempts + 1, token = token + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, started_at = :now, updated_at = :now
WHERE seq IN (SELECT seq FROM picked) AND state IN ('pending', 'failed')
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          lock_key, max_retries, no_retry_exit_codes

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
  AND (lock_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs AS held
      WHERE held.lock_key = jobs.lock_key AND held.lock_key IS NOT NULL
        AND held.lease_owner IS NOT NULL))
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
      AND scheduled = 0
      AND queue NOT IN (SELECT name FROM queues
                        WHERE paused = 1 OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))) AS heads
WHERE place = 1 AND NOT EXISTS (
    SELECT 1 FROM jobs AS held
    WHERE held.lock_key = heads.lock_key AND held.lock_key IS NOT NULL
      AND held.lease_owner IS NOT NULL)
ORDER BY priority DESC, run_at, seq
LIMIT :want

-- name: flow_free_candidates
-- Jobs with neither a limit nor a lock.
SELECT seq, queue, priority, run_at, lock_key FROM jobs INDEXED BY jobs_claim
WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
  AND lock_key IS NULL
  AND queue NOT IN (SELECT name FROM queues
                    WHERE paused = 1 OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
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
SET state = 'processing', attempts = attempts + 1, token = token + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, started_at = :now, updated_at = :now
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND state IN ('pending', 'failed')
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          lock_key, max_retries, no_retry_exit_codes

-- name: flow_settings
-- Every queue's settings (a row exists once a queue was paused or limited).
SELECT name, paused, concurrency, rate_jobs, rate_ms,
       (SELECT COUNT(*) FROM jobs INDEXED BY jobs_by_queue_state
        WHERE state = 'processing' AND jobs.queue = queues.name)
       + (SELECT COUNT(*) FROM jobs AS dying INDEXED BY jobs_dying
          WHERE dying.queue = queues.name AND dying.lease_owner IS NOT NULL
            AND dying.state <> 'processing') AS running
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

-- name: flow_forget_starts
DELETE FROM queue_starts WHERE queue = :queue

-- name: flow_lock_holder
SELECT id AS value FROM jobs INDEXED BY jobs_lock_held
WHERE lock_key = :key AND lease_owner IS NOT NULL

-- Hooks (SPEC 9.9) and reset (SPEC 9.10)

-- name: hooks
SELECT name, events, queue, job, created_at FROM hooks ORDER BY name

-- name: upsert_hook
INSERT INTO hooks (name, events, queue, job, created_at)
VALUES (:name, :events, :queue, :job, :now)
ON CONFLICT (name) DO UPDATE SET events = excluded.events, queue = excluded.queue,
    job = excluded.job, created_at = excluded.created_at

-- name: delete_hook
DELETE FROM hooks WHERE name = ?

-- name: hook_subjects
-- The queue of each settled job, and whether a hook made it (such jobs fire no hooks).
SELECT id, queue, made_by FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: insert_hook_job
-- insert_job's columns (lock_key last) and made_by; a hook job whose unique_key an active job holds is not
-- inserted (the hook's way to send one notification for a burst of events).
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key, made_by)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING

-- name: finished_since
-- Jobs that finished at or after an instant, per final state.
SELECT state, COUNT(*) AS n FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= ? AND finished_at IS NOT NULL
  AND +state IN ('completed', 'dead', 'cancelled')
GROUP BY state

-- name: live_runners
SELECT COUNT(*) AS value FROM runners

-- name: job_totals
SELECT (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM attempts) AS attempts

-- name: reset_attempts
DELETE FROM attempts

-- name: reset_deps
DELETE FROM job_deps

-- name: reset_jobs
DELETE FROM jobs

-- name: reset_counts
-- Nothing left to count (the triggers left rows of zeros).
DELETE FROM job_counts

-- name: reset_finished_minutes
DELETE FROM finished_minutes

-- name: reset_queue_starts
DELETE FROM queue_starts

-- name: reset_counters
DELETE FROM counters

-- name: reset_schedules
DELETE FROM schedules

-- name: reset_hooks
DELETE FROM hooks

-- name: reset_queues
DELETE FROM queues

-- name: reset_config
DELETE FROM config
