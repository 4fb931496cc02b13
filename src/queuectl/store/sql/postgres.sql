-- Named queries of the PostgreSQL store; each name matches a step of a flow in store/core.py
-- and a block of sqlite.sql. Instants are epoch milliseconds on the database's clock.
-- Names starting `pg_` exist only in this dialect (migration lock, clock, LISTEN/NOTIFY).

-- name: job_columns
seq, id, command, state, queue, priority, attempts, max_retries, timeout, run_at, depends_on,
no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at, started_at, finished_at,
exit_code, last_error, duration_ms, lease_owner, lease_expires_at, lock_key, made_by

-- name: insert_jobs
-- A batch with no unique_key and no dependency: nothing to decide, rows go straight in.
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)

-- name: pg_copy_jobs
-- insert_jobs' columns for a batch, streamed: one statement, so the counters' statement
-- trigger appends one delta row per queue and state of the batch, not one per job.
COPY jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
           waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
           finished_at, last_error, scheduled, lock_key) FROM STDIN

-- name: insert_job
-- A job whose unique_key an active job holds is not inserted (no row returned): the caller
-- then looks up the holder. The index predicate makes this the arbiter of the conflict.
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING
RETURNING seq

-- name: insert_dep
INSERT INTO job_deps (dep_id, job_id) VALUES (%s, %s) ON CONFLICT DO NOTHING

-- name: find_unique
SELECT id FROM jobs WHERE unique_key = %s AND state IN ('pending', 'processing', 'failed')

-- name: dep_states
-- FOR SHARE: a dependency cannot finish between this read and our commit, or its dependants
-- update would miss the job being inserted and leave it waiting forever.
SELECT id, state FROM jobs WHERE id = ANY(%s::text[]) FOR SHARE

-- name: jobs_by_ids
SELECT {job_columns} FROM jobs WHERE id = ANY(%s::text[])

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = %s

-- name: ids_from
-- Ids in [lo, hi), in order: the ids starting with a prefix (compared as bytes, whatever
-- the database's collation).
SELECT id FROM jobs WHERE id COLLATE "C" >= %s AND id COLLATE "C" < %s ORDER BY id COLLATE "C"
LIMIT %s

-- name: list_jobs
-- One query per filter combination, each walking its own index newest first (migration
-- 0004): a filter that matches few of a million jobs reads only those.
SELECT {job_columns} FROM jobs
WHERE seq < %(before)s::bigint
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_state
-- `BETWEEN x AND x` and ORDER BY the index's own columns, not `= x` and `ORDER BY seq`: under
-- `=` the planner drops the constant column from the order, sees that the primary key (or a
-- one-column index) yields `seq DESC` as well, and may walk that instead, filtering, which reads
-- every newer job when the wanted ones are old (`list --state pending`: 130 ms at a million
-- jobs). A range is no constant: only this index gives this order. The same holds below.
SELECT {job_columns} FROM jobs
WHERE state BETWEEN %(state)s::text AND %(state)s::text AND seq < %(before)s::bigint
ORDER BY state DESC, seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_queue
SELECT {job_columns} FROM jobs
WHERE queue BETWEEN %(queue)s::text AND %(queue)s::text AND seq < %(before)s::bigint
ORDER BY queue DESC, seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_queue_state
-- `queue =` here: a range on the first column would no longer end the walk at the last
-- (queue, state) entry, and a state with no job would read the whole queue.
SELECT {job_columns} FROM jobs
WHERE queue = %(queue)s::text AND state BETWEEN %(state)s::text AND %(state)s::text
  AND seq < %(before)s::bigint
ORDER BY state DESC, seq DESC LIMIT %(limit)s::bigint

-- name: promote_due
-- Scheduled jobs whose time has come join the claim index (see migration 0002).
UPDATE jobs SET scheduled = false
WHERE scheduled AND state IN ('pending', 'failed') AND run_at <= %s::bigint

-- name: pg_start_picked
-- The claim's own change, shared by `claim` and `flow_claim_counted`: the rows of the CTE
-- `picked` (seq) start an attempt under this runner; a statement that includes it may return
-- more columns after it.
UPDATE jobs
SET state = 'processing', attempts = attempts + 1, token = token + 1,
    lease_owner = %(owner)s::text,
    lease_expires_at = %(lease_until)s::bigint, started_at = %(now)s::bigint,
    updated_at = %(now)s::bigint
FROM picked
WHERE jobs.seq = picked.seq
RETURNING jobs.id, jobs.attempts, jobs.token, jobs.command, jobs.cwd, jobs.env, jobs.timeout,
          jobs.queue, jobs.priority, jobs.run_at, jobs.seq

-- name: claim
-- SKIP LOCKED: concurrent claimers take different rows instead of queueing on the same ones.
-- The claim when no flow control applies: no queue served has a limit and no job that may
-- start holds a lock (else it takes nothing and the core claims through `flow_*` instead).
-- A job not `scheduled` is due, whatever its run_at: this process's clock may run a few ms
-- behind its enqueuer's (another host's, or before a step), and must not hold it back.
WITH picked AS (
    SELECT seq FROM jobs
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
      AND queue NOT IN (SELECT name FROM queues WHERE paused)
      AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
      AND NOT EXISTS (
          SELECT 1 FROM queues
          WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND NOT paused
            AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[])))
      AND NOT EXISTS (
          SELECT 1 FROM jobs AS locked
          WHERE locked.lock_key IS NOT NULL AND locked.state IN ('pending', 'failed')
            AND locked.waiting_on = 0)
    ORDER BY priority DESC, run_at, seq
    LIMIT %(want)s::bigint
    FOR UPDATE SKIP LOCKED
)
{pg_start_picked}, jobs.max_retries, jobs.no_retry_exit_codes

-- name: pg_attempts_of_claimed
-- The history rows of the attempts that the CTE `claimed` started, under this runner's host;
-- shared by the claims sent in one round trip with the settlements.
INSERT INTO attempts (job_id, attempt, token, runner, host, started_at)
SELECT id, attempts, token, %(owner)s::text,
       (SELECT host FROM runners WHERE id = %(owner)s::text), %(now)s::bigint
FROM claimed

-- name: pg_claim_started
-- `claim` and the history rows of the attempts it starts, in one statement (see
-- finish_and_claim: it shares a round trip with the settlements). Every row also says whether
-- flow control may have held a job back (`flow_held_back`, in the claim's own snapshot); when
-- nothing was claimed, one row of nulls says it.
WITH claimed AS ({claim}),
started AS ({pg_attempts_of_claimed}),
held AS ({flow_held_back})
SELECT claimed.*, held.value AS held_back FROM held LEFT JOIN claimed ON TRUE

-- name: startable
-- (an expression) Whether a job of the served queues (`queues`, NULL: every queue) may start
-- now, flow control aside: due, waiting on nothing, its queue not paused.
EXISTS (
    SELECT 1 FROM jobs
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
      AND queue NOT IN (SELECT name FROM queues WHERE paused)
      AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[])))

-- name: flow_held_back
-- Whether flow control may hold back a job that `claim` took nothing of: a job of the served
-- queues may start, and a served queue has a limit or a job that may start holds a lock (the
-- claim's own conditions). If not, the claim's empty answer is the whole answer.
SELECT (EXISTS (
            SELECT 1 FROM queues
            WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND NOT paused
              AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[])))
        OR EXISTS (
            SELECT 1 FROM jobs
            WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0))
       AND {startable} AS value

-- name: fenced_jobs
-- The attempts still ours among those named; the caller compares each claim's token.
-- FOR UPDATE, in id order (one lock order for every settler, so two cannot deadlock): the rows
-- stay ours until commit, so a concurrent cancel or reap cannot slip in before the settlement.
-- has_dependants spares the update of dependants when there are none (the common case).
SELECT id, attempts, token, max_retries, no_retry_exit_codes,
       EXISTS (SELECT 1 FROM job_deps WHERE dep_id = jobs.id) AS has_dependants
FROM jobs
WHERE id = ANY(%s) AND state = 'processing' AND lease_owner = %s
ORDER BY id
FOR UPDATE

-- name: settle_job
UPDATE jobs
SET state = %(state)s::text, run_at = COALESCE(%(run_at)s::bigint, run_at),
    scheduled = COALESCE(%(run_at)s::bigint > %(now)s::bigint, false),
    finished_at = %(finished_at)s::bigint, exit_code = %(exit_code)s::integer,
    last_error = %(last_error)s::text,
    duration_ms = COALESCE(%(duration_ms)s::bigint,
                           GREATEST(0, %(finished_at)s::bigint - started_at)),
    updated_at = %(now)s::bigint, lease_owner = NULL, lease_expires_at = NULL
WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s
  AND token = %(token)s::bigint

-- name: pg_settle_fenced
-- One outcome in one statement, decided ahead by the runner (lifecycle.settle_ours, from the
-- retry rules its claim returned): the job, only if still processing under this owner and
-- claim (the fence; the UPDATE locks the row and checks again after any wait); then its
-- history row; then, if it completed, its dependants wait on one fewer, and the runners are
-- woken (at commit) if any was unblocked. A row comes back only if the job was settled.
WITH settled AS ({settle_job}
    RETURNING id, state
),
finished AS ({finish_attempt}
      AND EXISTS (SELECT 1 FROM settled)
),
unblocked AS (
    -- The uncorrelated EXISTS are checked once, first: a job without dependants (the common
    -- case) reads no jobs here, whatever plan stale statistics suggest.
    UPDATE jobs SET waiting_on = waiting_on - 1
    WHERE id = ANY(ARRAY(SELECT job_id FROM job_deps WHERE dep_id = %(id)s))
      AND state = 'pending' AND waiting_on > 0
      AND EXISTS (SELECT 1 FROM job_deps WHERE dep_id = %(id)s)
      AND EXISTS (SELECT 1 FROM settled WHERE state = 'completed')
    RETURNING id
)
SELECT id, CASE WHEN EXISTS (SELECT 1 FROM unblocked)
                THEN pg_notify('queuectl_wakeup', '') END AS woke
FROM settled

-- name: release_job
UPDATE jobs
SET state = 'pending', attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
    scheduled = false, updated_at = %(now)s::bigint
WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s
  AND token = %(token)s::bigint

-- name: let_go
-- The processes of an attempt no longer processing (cancelled) are gone, as its runner says
-- (or its runner is gone): its lease, which held its lock and its queue's slot, is let go. A
-- job run again meanwhile waited on this (see `requeue`): it may start now.
UPDATE jobs
SET lease_owner = NULL, lease_expires_at = NULL,
    waiting_on = waiting_on - CASE WHEN state IN ('pending', 'failed') THEN 1 ELSE 0 END
WHERE id = %(id)s AND lease_owner = %(owner)s AND token = %(token)s::bigint
  AND state <> 'processing'

-- name: start_attempt
-- The history entry of an attempt just claimed; its host is the claiming runner's.
INSERT INTO attempts (job_id, attempt, token, runner, host, started_at)
VALUES (%(id)s, %(attempt)s::integer, %(token)s::bigint, %(owner)s::text,
        (SELECT host FROM runners WHERE id = %(owner)s::text), %(now)s::bigint)

-- name: finish_attempt
-- The entry of this claim of the job, if still open. A null output keeps what the live copy
-- saved.
UPDATE attempts
SET finished_at = %(finished_at)s::bigint, exit_code = %(exit_code)s::integer,
    error = %(error)s::text,
    duration_ms = COALESCE(%(duration_ms)s::bigint,
                           GREATEST(0, %(finished_at)s::bigint - started_at)),
    output = COALESCE(%(output)s::bytea, output),
    output_dropped = COALESCE(%(dropped)s::bigint, output_dropped)
WHERE job_id = %(id)s AND token = %(token)s::bigint AND finished_at IS NULL

-- name: drop_attempt
-- An attempt given back by a stopping runner is not history: its number is used again.
DELETE FROM attempts
WHERE job_id = %(id)s AND token = %(token)s::bigint AND finished_at IS NULL

-- name: close_attempt
-- A running attempt cancelled: it ends now.
UPDATE attempts
SET finished_at = %(now)s::bigint, error = 'cancelled',
    duration_ms = GREATEST(0, %(now)s::bigint - started_at)
WHERE seq = (SELECT MAX(seq) FROM attempts WHERE job_id = %(id)s) AND finished_at IS NULL

-- name: save_live_output
-- Fenced: only while the attempt still runs under this runner, so a runner that resumes after
-- losing its job cannot overwrite a newer attempt's output, nor one of a job deleted meanwhile;
-- or, from the runner that ran it, once it was cancelled while it ran (what it printed before
-- it was killed, which no settlement writes).
UPDATE attempts SET output = %(data)s::bytea, output_dropped = %(dropped)s::bigint
WHERE job_id = %(id)s AND token = %(token)s::bigint AND runner = %(owner)s::text
  AND (finished_at IS NULL
       AND EXISTS (SELECT 1 FROM jobs WHERE id = %(id)s AND state = 'processing'
                                        AND lease_owner = %(owner)s
                                        AND token = %(token)s::bigint)
       OR error = 'cancelled')

-- name: last_output
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = %s ORDER BY seq DESC LIMIT 1

-- name: nth_output
-- The job's n-th attempt of all it ever made (a requeue starts attempt numbers again).
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = %(id)s ORDER BY seq LIMIT 1 OFFSET %(n)s::bigint - 1

-- name: history
SELECT attempt, runner, host, started_at, finished_at, exit_code, error, duration_ms,
       token
FROM attempts WHERE job_id = %s ORDER BY seq

-- name: unblock_dependants
-- Dependants of the jobs that just completed (a list) wait on that many fewer.
UPDATE jobs SET waiting_on = jobs.waiting_on - done.n
FROM (SELECT job_id, COUNT(*) AS n FROM job_deps WHERE dep_id = ANY(%(ids)s::text[])
      GROUP BY job_id) AS done
WHERE jobs.id = done.job_id AND jobs.state = 'pending' AND jobs.waiting_on > 0

-- name: dependants_of
-- The edges from the jobs named to their dependants. `ANY(ARRAY(...))`: a list the planner
-- cannot count, so it probes the index for each, whatever the statistics say (a store just
-- filled has none, and a list of a batch's ids then looks like a good part of the table).
SELECT dep_id, job_id FROM job_deps WHERE dep_id = ANY(ARRAY(SELECT unnest(%s::text[])))

-- name: cancel_dependants
-- Dependants cancelled because a dependency ended `state` (dead or cancelled): `doomed` maps
-- each to the job it names as the reason (a JSON object). Those still pending or failed are
-- returned, for the hooks on `cancelled` and the next step of the cascade. Each row is found
-- by its id, whatever the statistics say (a store just filled has none): `= ANY(ARRAY(...))`,
-- as a join with the object's rows, which the planner cannot count, may hash every pending
-- job; and `state || ''`, which no index of state can serve, as a walk of every pending job
-- may look cheaper (the same in cancel_waiting and requeue).
UPDATE jobs
SET state = 'cancelled',
    last_error = 'dependency ' || (%(doomed)s::jsonb ->> id) || ' is ' || %(state)s::text,
    finished_at = %(now)s::bigint, updated_at = %(now)s::bigint
WHERE id = ANY(ARRAY(SELECT jsonb_object_keys(%(doomed)s::jsonb)))
  AND state || '' IN ('pending', 'failed')
RETURNING id, queue, attempts, exit_code, last_error, made_by

-- name: owned_jobs
-- The attempts whose processes the runner may still have: running, or cancelled and dying;
-- with the attempt number their processes carry (a requeued job's own starts again).
SELECT jobs.id, attempts.attempt AS attempts FROM jobs
JOIN attempts ON attempts.job_id = jobs.id AND attempts.token = jobs.token
WHERE jobs.lease_owner = %(owner)s AND jobs.state = 'processing'
UNION ALL
SELECT jobs.id, attempts.attempt FROM jobs
JOIN attempts ON attempts.job_id = jobs.id AND attempts.token = jobs.token
WHERE jobs.lease_owner = %(owner)s AND jobs.state <> 'processing'

-- name: expired_dying
-- Attempts cancelled while they ran whose runner is gone (`owners`) or stopped renewing
-- their lease: nobody is left to say their processes are gone.
SELECT id, token, lease_owner FROM jobs
WHERE lease_owner IS NOT NULL AND state <> 'processing'
  AND (lease_owner = ANY(%(owners)s::text[])
       OR lease_expires_at < %(now)s::bigint AND lease_owner <> ALL(%(exclude)s::text[]))
FOR UPDATE SKIP LOCKED

-- name: expired_jobs
-- SKIP LOCKED: a row locked now is being settled by its owner or reaped by another runner.
-- A runner never reaps its own leases, nor a live local runner's (`exclude`): they renew them.
SELECT id, attempts, token, lease_owner FROM jobs
WHERE state = 'processing' AND lease_expires_at < %(now)s::bigint
  AND lease_owner <> ALL(%(exclude)s::text[])
FOR UPDATE SKIP LOCKED

-- name: housekeeping
-- What a runner's housekeeping reads, in one statement (one snapshot, one round trip): the
-- jobs leased to it (with their claims' tokens); every registered runner, itself included (its stop request; whether it is
-- registered still); whether another runner's lease expired (a dying attempt's too: a
-- runner gone without a word leaves it, and nothing else would reap it); the next schedule
-- slot; whether a job of its queues may start (the fallback poll, for a lost wakeup); the configuration;
-- and how many count deltas piled up (at most `deltas`). Each part probes an index.
SELECT
    (SELECT json_agg(json_build_array(id, token)) FROM jobs
     WHERE lease_owner = %(owner)s::text AND state = 'processing') AS owned,
    (SELECT json_agg(r) FROM (
        SELECT id, host, pid, pid_started, workers, queues, started_at, heartbeat_at,
               stop_requested
        FROM runners) AS r) AS runners,
    EXISTS (SELECT 1 FROM jobs
            WHERE state = 'processing' AND lease_expires_at < %(now)s::bigint
              AND lease_owner <> %(owner)s::text)
    OR EXISTS (SELECT 1 FROM jobs
               WHERE lease_owner IS NOT NULL AND state <> 'processing'
                 AND lease_expires_at < %(now)s::bigint
                 AND lease_owner <> %(owner)s::text) AS expired,
    (SELECT MIN(next_at) FROM schedules) AS next_schedule,
    {startable} OR EXISTS (
        SELECT 1 FROM jobs
        WHERE scheduled AND state IN ('pending', 'failed') AND run_at <= %(now)s::bigint
          AND waiting_on = 0 AND queue NOT IN (SELECT name FROM queues WHERE paused)
          AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))) AS startable,
    (SELECT json_object_agg(key, value) FROM config) AS config,
    (SELECT COUNT(*) FROM (SELECT 1 FROM job_count_deltas LIMIT %(deltas)s::bigint) AS piled)
        AS deltas

-- name: next_due
SELECT MIN(run_at) AS value FROM jobs
WHERE scheduled AND state IN ('pending', 'failed') AND run_at > %s::bigint

-- name: cancel_job
-- (SET expressions see the row as it was: a running job's duration ends now.) A running
-- job keeps its lease until its runner says its processes are gone (see let_go).
UPDATE jobs
SET state = 'cancelled', last_error = 'cancelled', finished_at = %(now)s::bigint,
    updated_at = %(now)s::bigint,
    duration_ms = CASE WHEN state = 'processing' THEN GREATEST(0, %(now)s::bigint - started_at)
                       ELSE duration_ms END
WHERE id = %(id)s AND state IN ('pending', 'failed', 'processing')

-- name: cancel_waiting
-- Jobs that are not running cancelled in one statement: nothing of theirs runs to be killed
-- or closed. Those still pending or failed are returned. (`state || ''`: by id, see
-- cancel_dependants.)
UPDATE jobs
SET state = 'cancelled', last_error = 'cancelled', finished_at = %(now)s::bigint,
    updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND state || '' IN ('pending', 'failed')
RETURNING id

-- name: locked_jobs
-- The jobs named, locked until commit in id order (the order settlements lock in, so a bulk
-- change and a runner cannot deadlock): what is read is what the transaction changes.
SELECT {job_columns} FROM jobs WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE

-- name: newest_seq
SELECT COALESCE(MAX(seq), 0) AS value FROM jobs

-- name: bulk_batch
-- The next jobs of a bulk change in one state, oldest first: after a cursor (`after`), up to
-- the newest job when the change began (`upto`). Each batch walks on from where the last one
-- ended, so the whole change reads each job once. `BETWEEN` and the index's own order: see
-- list_jobs_by_state.
SELECT id, seq FROM jobs
WHERE state BETWEEN %(state)s::text AND %(state)s::text
  AND seq > %(after)s::bigint AND seq <= %(upto)s::bigint
ORDER BY state, seq LIMIT %(batch)s::bigint

-- name: bulk_batch_of_queue
SELECT id, seq FROM jobs
WHERE queue = %(queue)s::text AND state BETWEEN %(state)s::text AND %(state)s::text
  AND seq > %(after)s::bigint AND seq <= %(upto)s::bigint
ORDER BY state, seq LIMIT %(batch)s::bigint

-- name: dependencies_of
-- The dependencies that the jobs named still have, by their edges, with their states: a
-- dependency deleted since took its edges with it, and is none any more, whatever job holds
-- its id now.
SELECT job_deps.job_id, jobs.id AS dep_id, jobs.state
FROM job_deps JOIN jobs ON jobs.id = job_deps.dep_id
WHERE job_deps.job_id = ANY(ARRAY(SELECT unnest(%s::text[])))  -- see dependants_of

-- name: locked_dependencies_of
-- The same, read to count what a job run again waits on; FOR SHARE as in dep_states: none of
-- them can complete unseen before this commits.
{dependencies_of}
FOR SHARE OF jobs

-- name: requeue
-- Finished jobs run again from their first attempt; their history stays. `jobs` maps each to
-- its `waiting_on`: its dependencies not completed now (see SQLStore._requeue_waiting), and
-- one more while the processes of its cancelled attempt still live (their lease held; see
-- let_go). Those still in `states` are returned. Each row found by its id (see
-- cancel_dependants).
UPDATE jobs
SET state = 'pending', attempts = 0, run_at = %(now)s::bigint, scheduled = false,
    updated_at = %(now)s::bigint, started_at = NULL, finished_at = NULL, exit_code = NULL,
    last_error = NULL, duration_ms = NULL,
    waiting_on = (%(jobs)s::jsonb ->> id)::integer
                 + CASE WHEN lease_owner IS NULL THEN 0 ELSE 1 END
WHERE id = ANY(ARRAY(SELECT jsonb_object_keys(%(jobs)s::jsonb)))
  AND state || '' = ANY(%(states)s::text[])
RETURNING id

-- name: expire_finished
-- One small batch of the oldest jobs in these states that finished in [since, before), so
-- enqueues and claims never wait long; when each finished, so that the next batch starts
-- there (retention starts from 0, and its batches are few). SKIP LOCKED: a row another
-- runner is expiring now is its to delete. A cancelled job whose attempt still dies is kept
-- (its lease holds its lock and slot until its processes are gone).
DELETE FROM jobs WHERE seq IN (
    SELECT seq FROM jobs
    WHERE finished_at < %(before)s::bigint AND finished_at >= %(since)s::bigint
      AND state = ANY(%(states)s::text[]) AND lease_owner IS NULL
    ORDER BY finished_at
    LIMIT %(batch)s::bigint
    FOR UPDATE SKIP LOCKED)
RETURNING finished_at

-- name: counts
-- Jobs and attempts per queue and state: the compacted base plus the deltas appended since
-- (migration 0004), in one statement, so one snapshot; `deltas` says when to compact.
SELECT queue, state, SUM(n) AS n, SUM(attempts) AS attempts, SUM(delta) AS deltas FROM (
    SELECT queue, state, n, attempts, 0 AS delta FROM job_counts
    UNION ALL
    SELECT queue, state, n, attempts, 1 FROM job_count_deltas
) AS counters
GROUP BY queue, state

-- name: counters
-- The counters that only go up (migration 0012): the compacted base plus the deltas appended
-- since, in one statement, as `counts`.
SELECT queue, what, outcome, state, bound_ms, SUM(n) AS n, SUM(total_ms) AS total_ms,
       SUM(delta) AS deltas
FROM (
    SELECT queue, what, outcome, state, bound_ms, n, total_ms, 0 AS delta FROM counters
    UNION ALL
    SELECT queue, what, outcome, state, bound_ms, n, total_ms, 1 FROM counter_deltas
) AS counted
GROUP BY queue, what, outcome, state, bound_ms

-- name: done_since
SELECT COUNT(*) AS value FROM jobs WHERE finished_at >= %s::bigint AND state = 'completed'

-- name: config_all
SELECT key, value FROM config

-- name: config_set
INSERT INTO config (key, value) VALUES (%s, %s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: queues
SELECT name, paused FROM queues

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- name: register_runner
INSERT INTO runners (id, host, pid, pid_started, workers, queues, started_at, heartbeat_at,
                     stop_requested)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, FALSE)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, pid_started = excluded.pid_started,
    workers = excluded.workers, queues = excluded.queues, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, stop_requested = FALSE

-- name: beat_runner
UPDATE runners SET heartbeat_at = %s::bigint WHERE id = %s RETURNING stop_requested

-- name: renew_leases
UPDATE jobs SET lease_expires_at = %s::bigint WHERE lease_owner = %s AND state = 'processing'

-- name: renew_dying
-- The leases of this runner's cancelled attempts whose processes it is still killing.
UPDATE jobs SET lease_expires_at = %s::bigint
WHERE lease_owner = %s AND state <> 'processing'

-- name: unregister_runner
DELETE FROM runners WHERE id = %s

-- name: runners
SELECT id, host, pid, pid_started, workers, queues, started_at, heartbeat_at, stop_requested
FROM runners ORDER BY started_at

-- name: running_jobs
SELECT lease_owner, id FROM jobs WHERE state = 'processing' ORDER BY lease_owner, started_at

-- name: request_stop
UPDATE runners SET stop_requested = TRUE

-- name: withdraw_stop
UPDATE runners SET stop_requested = FALSE WHERE stop_requested = TRUE

-- name: jobs_of_owner
SELECT id, attempts, token FROM jobs WHERE state = 'processing' AND lease_owner = %s
FOR UPDATE SKIP LOCKED

-- name: pg_now_ms
-- clock_timestamp(), not now(): the instant of the read, not of the transaction's start.
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS value

-- name: pg_migration_lock
-- Held until commit; advisory locks are per database, so other databases are not blocked.
SELECT pg_advisory_xact_lock(hashtextextended('queuectl.migrate', 0))

-- name: pg_schema_exists
SELECT to_regclass('queuectl_schema') IS NOT NULL AS value

-- name: pg_create_schema_table
CREATE TABLE IF NOT EXISTS queuectl_schema (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)

-- name: pg_schema_version
SELECT COALESCE(MAX(version), 0) AS value FROM queuectl_schema

-- name: pg_record_migration
INSERT INTO queuectl_schema (version, name) VALUES (%s, %s)

-- name: pg_listen
LISTEN queuectl_wakeup

-- name: pg_notify
-- Inside a transaction it is delivered at commit, and not at all on rollback.
NOTIFY queuectl_wakeup

-- name: upsert_schedule
INSERT INTO schedules (name, cron, every_s, tz, job, created_at, last_at, next_at)
VALUES (%(name)s, %(cron)s, %(every_s)s, %(tz)s, %(job)s, %(now)s, NULL, %(next_at)s)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, every_s = excluded.every_s,
    tz = excluded.tz, job = excluded.job, created_at = excluded.created_at,
    next_at = excluded.next_at

-- name: delete_schedule
DELETE FROM schedules WHERE name = %s

-- name: schedules
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules ORDER BY name

-- name: due_schedules
-- SKIP LOCKED: a slot another runner is firing right now is its to fire; once it commits,
-- the schedule's next_at is past this one's `now` and it is not due here any more.
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules
WHERE next_at <= %s::bigint ORDER BY next_at
FOR UPDATE SKIP LOCKED

-- name: advance_schedule
UPDATE schedules SET last_at = %(now)s::bigint, next_at = %(next_at)s::bigint
WHERE name = %(name)s

-- name: next_schedule
SELECT MIN(next_at) AS value FROM schedules

-- name: savepoint
SAVEPOINT fire

-- name: release_savepoint
RELEASE SAVEPOINT fire

-- name: rollback_savepoint
ROLLBACK TO SAVEPOINT fire

-- name: verify
-- PostgreSQL guards its own pages (WAL, optional checksums): nothing for queuectl to walk.
SELECT 'ok' AS value

-- name: finished_per_minute
-- Attempts that ended since the minute of an instant, per minute and outcome (failed: those
-- that will be retried), from the rows kept as they ended (migration 0009).
SELECT minute, state, SUM(n) AS n FROM finished_minutes
WHERE minute >= %(since)s::bigint / 60000
GROUP BY minute, state

-- name: recent_durations
-- The durations of the attempts that ended since the minute of an instant, per queue and
-- bucket (bound_ms: -1 none recorded, -2 longer than every bound).
SELECT queue, bound_ms, SUM(n) AS n, SUM(total_ms) AS total_ms FROM finished_minutes
WHERE minute >= %(since)s::bigint / 60000 AND bound_ms <> -1
GROUP BY queue, bound_ms

-- name: forget_finished_minutes
-- The rows of minutes no read looks at any more.
DELETE FROM finished_minutes WHERE minute < %(since)s::bigint / 60000

-- name: oldest_due
-- Per queue, the earliest run_at of the jobs that may start now: one probe of the
-- jobs_ready index per queue named by the counters.
SELECT queue, run_at FROM (
    SELECT names.queue, (
        SELECT run_at FROM jobs
        WHERE jobs.queue = names.queue AND state IN ('pending', 'failed') AND waiting_on = 0
          AND run_at <= %(now)s::bigint
        ORDER BY run_at LIMIT 1) AS run_at
    FROM (SELECT queue FROM job_counts UNION SELECT queue FROM job_count_deltas) AS names
) AS due
WHERE run_at IS NOT NULL

-- name: pg_count_deltas
-- Whether enough deltas piled up to be worth compacting (reads at most `limit` of them).
SELECT COUNT(*) AS value FROM (SELECT 1 FROM job_count_deltas LIMIT %s::bigint) AS piled

-- name: pg_compaction_lock
-- One compactor at a time (the others skip): two would lock base rows in any order.
SELECT pg_try_advisory_xact_lock(hashtextextended('queuectl.compact_counts', 0)) AS value

-- name: pg_compact_counts
-- Folds the committed deltas into the base in one transaction: a concurrent read sees either
-- both or neither; deltas of transactions still open stay for the next compaction. The
-- counters that only go up (migration 0012) are folded alongside.
WITH folded AS (DELETE FROM job_count_deltas RETURNING queue, state, n, attempts),
counted AS (
    DELETE FROM counter_deltas RETURNING queue, what, outcome, state, bound_ms, n, total_ms
),
totals AS (
    INSERT INTO counters AS base (queue, what, outcome, state, bound_ms, n, total_ms)
    SELECT queue, what, outcome, state, bound_ms, SUM(n), SUM(total_ms) FROM counted
    GROUP BY queue, what, outcome, state, bound_ms
    ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE
    SET n = base.n + excluded.n, total_ms = base.total_ms + excluded.total_ms
)
INSERT INTO job_counts AS base (queue, state, n, attempts)
SELECT queue, state, SUM(n), SUM(attempts) FROM folded GROUP BY queue, state
ON CONFLICT (queue, state) DO UPDATE
SET n = base.n + excluded.n, attempts = base.attempts + excluded.attempts

-- Flow control (SPEC 9.2): the claim when a served queue has a limit or a due job a lock.
-- The core locks the limited queues' rows; with concurrency limits only and no job taking a
-- lock, flow_claim_counted then counts and claims in one statement. Otherwise it reads their
-- counts, then picks among three kinds of candidates in claim order: each limited queue's
-- first jobs, the first job of each free lock, and the rest. SKIP LOCKED alone cannot protect
-- a count, hence the row locks.

-- name: pg_flow_claim_started
-- `flow_claim_counted` and the history rows of the attempts it starts, in one statement: the
-- claim of a runner whose last look found only concurrency limits (`names`), sent in the
-- round trip of its settlements after `flow_lock_queues` (see finish_and_claim).
WITH claimed AS ({flow_claim_counted}),
started AS ({pg_attempts_of_claimed})
SELECT * FROM claimed

-- name: flow_lock_queues
-- FOR UPDATE, in name order: claimers of a limited queue take turns (and cannot deadlock),
-- so each reads the counts the previous one committed, in a later statement: READ COMMITTED
-- gives that one a snapshot holding every claim committed before the lock was ours. Queues
-- without limits are not locked, except those in `names` (the queues a claim sent in the same
-- round trip counts: each is locked before it is counted, even if its limit changed since the
-- runner last looked). The limits come from the locked rows, so they are current; `locks_due`
-- (any job with a lock that may start) is only a hint for choosing the claim.
SELECT name, paused, concurrency, rate_jobs, rate_ms,
       EXISTS (SELECT 1 FROM jobs
               WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed')
                 AND waiting_on = 0) AS locks_due
FROM queues
WHERE ((concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND NOT paused
       OR name = ANY(%(names)s::text[]))
  AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[]))
ORDER BY name
FOR UPDATE OF queues

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
        ORDER BY priority DESC, run_at, seq
        LIMIT room.n
        FOR UPDATE SKIP LOCKED) AS head
),
picked AS (
    SELECT seq FROM heads ORDER BY priority DESC, run_at, seq LIMIT %(want)s::bigint
)
{pg_start_picked}, jobs.lock_key, jobs.max_retries, jobs.no_retry_exit_codes

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
  AND (lock_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM jobs AS held
      WHERE held.lock_key = jobs.lock_key AND held.lease_owner IS NOT NULL))
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
      AND NOT scheduled
      AND queue NOT IN (SELECT name FROM queues
                        WHERE paused OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
      AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))) AS heads
WHERE place = 1 AND NOT EXISTS (
    SELECT 1 FROM jobs AS held
    WHERE held.lock_key = heads.lock_key AND held.lease_owner IS NOT NULL)
ORDER BY priority DESC, run_at, seq
LIMIT %(want)s::bigint

-- name: flow_free_candidates
-- Jobs with neither a limit nor a lock; SKIP LOCKED as in `claim`.
SELECT seq, queue, priority, run_at, lock_key FROM jobs
WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
  AND lock_key IS NULL
  AND queue NOT IN (SELECT name FROM queues
                    WHERE paused OR concurrency IS NOT NULL OR rate_jobs IS NOT NULL)
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
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
SET state = 'processing', attempts = attempts + 1, token = token + 1,
    lease_owner = %(owner)s::text,
    lease_expires_at = %(lease_until)s::bigint, started_at = %(now)s::bigint,
    updated_at = %(now)s::bigint
WHERE seq = ANY(%(seqs)s::bigint[]) AND state IN ('pending', 'failed')
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          lock_key, max_retries, no_retry_exit_codes

-- name: flow_settings
-- Every queue's settings (a row exists once a queue was paused or limited).
SELECT name, paused, concurrency, rate_jobs, rate_ms,
       (SELECT COUNT(*) FROM jobs
        WHERE jobs.state = 'processing' AND jobs.queue = queues.name)
       + (SELECT COUNT(*) FROM jobs AS dying
          WHERE dying.queue = queues.name AND dying.lease_owner IS NOT NULL
            AND dying.state <> 'processing') AS running
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

-- name: flow_forget_starts
DELETE FROM queue_starts WHERE queue = %(queue)s

-- name: flow_lock_holder
SELECT id AS value FROM jobs WHERE lock_key = %(key)s AND lease_owner IS NOT NULL

-- Hooks (SPEC 9.9) and reset (SPEC 9.10)

-- name: hooks
SELECT name, events, queue, job, created_at FROM hooks ORDER BY name

-- name: upsert_hook
INSERT INTO hooks (name, events, queue, job, created_at)
VALUES (%(name)s, %(events)s, %(queue)s, %(job)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET events = excluded.events, queue = excluded.queue,
    job = excluded.job, created_at = excluded.created_at

-- name: delete_hook
DELETE FROM hooks WHERE name = %s

-- name: hook_subjects
-- The queue of each settled job, and whether a hook made it (such jobs fire no hooks).
SELECT id, queue, made_by FROM jobs WHERE id = ANY(%s)

-- name: insert_hook_job
-- insert_job's columns (lock_key last) and made_by; a hook job whose unique_key an active job holds is not
-- inserted (the hook's way to send one notification for a burst of events).
INSERT INTO jobs (id, command, state, queue, priority, max_retries, timeout, run_at, depends_on,
                  waiting_on, no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at,
                  finished_at, last_error, scheduled, lock_key, made_by)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING

-- name: finished_since
-- Jobs that finished at or after an instant, per final state.
SELECT state, COUNT(*) AS n FROM jobs
WHERE finished_at >= %s::bigint AND state IN ('completed', 'dead', 'cancelled')
GROUP BY state

-- name: live_runners
SELECT COUNT(*) AS value FROM runners

-- name: job_totals
SELECT (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM attempts) AS attempts

-- name: reset_attempts
-- TRUNCATE: no per-row trigger over a million jobs; the identity keeps counting.
TRUNCATE attempts

-- name: reset_deps
TRUNCATE job_deps

-- name: reset_jobs
TRUNCATE jobs

-- name: reset_counts
-- TRUNCATE fires no row or statement trigger: the counters are emptied with the jobs.
TRUNCATE job_counts, job_count_deltas

-- name: reset_finished_minutes
TRUNCATE finished_minutes

-- name: reset_queue_starts
DELETE FROM queue_starts

-- name: reset_counters
TRUNCATE counters, counter_deltas

-- name: reset_schedules
DELETE FROM schedules

-- name: reset_hooks
DELETE FROM hooks

-- name: reset_queues
DELETE FROM queues

-- name: reset_config
DELETE FROM config
