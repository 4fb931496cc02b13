-- Named queries of the PostgreSQL store for the runner's exchange (store/exchange.py).

-- name: promote_due
-- Scheduled jobs whose time has come join the claim index (see migration 0002).
UPDATE jobs SET scheduled = false
WHERE scheduled AND state IN ('pending', 'failed') AND run_at <= %s::bigint
  AND NOT held  -- a held job stays scheduled, out of the claim, until released

-- name: pg_start_picked
-- The claim's own change, shared by `claim` and `flow_claim_counted`: the rows of the CTE
-- `picked` (seq) start an attempt under this runner; a statement that includes it may return
-- more columns after it.
UPDATE jobs
{start_attempt_set}
FROM picked
WHERE jobs.seq = picked.seq
RETURNING jobs.id, jobs.attempts, jobs.token, jobs.command, jobs.cwd, jobs.env, jobs.timeout,
          jobs.queue, jobs.priority, jobs.run_at, jobs.seq, jobs.silence_timeout, {claimed_limits}

-- name: claim
-- SKIP LOCKED: concurrent claimers take different rows instead of queueing on the same ones.
-- The claim when no flow control applies: no queue served has a limit and no job that may
-- start holds a lock (else it takes nothing and the exchange claims through `flow_*` instead).
-- A job not `scheduled` is due, whatever its run_at: this process's clock may run a few ms
-- behind its enqueuer's (another host's, or before a step), and must not hold it back.
-- A held job is still `scheduled` (promote_due skips it): never a candidate here.
WITH picked AS (
    SELECT seq FROM jobs
    WHERE (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
      AND {pg_claim_candidate}
    ORDER BY priority DESC, run_at, seq
    LIMIT %(want)s::bigint
    FOR UPDATE SKIP LOCKED
)
{pg_start_picked}, jobs.max_retries, jobs.no_retry_exit_codes, jobs.batch, jobs.max_retries_set

-- name: claim_one_queue
-- `claim` for a runner of one queue (`queue`): read from that queue's own entries
-- (jobs_queue_claim) in claim order, so a backlog of other queues is never walked.
WITH picked AS (
    SELECT seq FROM jobs
    WHERE queue = %(queue)s::text AND {pg_claim_candidate}
    ORDER BY priority DESC, run_at, seq
    LIMIT %(want)s::bigint
    FOR UPDATE SKIP LOCKED
)
{pg_start_picked}, jobs.max_retries, jobs.no_retry_exit_codes, jobs.batch, jobs.max_retries_set

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

-- name: pg_claim_one_queue_started
-- `pg_claim_started` for a runner of one queue.
WITH claimed AS ({claim_one_queue}),
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
      AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
      AND {requires_met})

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
            WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0)
        OR EXISTS (
            SELECT 1 FROM jobs
            WHERE batch_limited AND state IN ('pending', 'failed') AND waiting_on = 0))
       AND {startable} AS value

-- name: pg_lock_settling
-- The jobs about to be settled, locked in id order before the settlements: each settlement
-- then reads the dependants with a snapshot taken after any wait here, so an edge committed
-- by an enqueue that held the job (dep_states, FOR SHARE) is seen and its job let go.
SELECT id FROM jobs WHERE id = ANY(%s::text[]) ORDER BY id FOR UPDATE

-- name: pg_lock_settling_batch
-- The batch of a job about to be settled, locked after every such job (the order of the
-- counters' trigger): each settlement then counts, in a later statement, every change of its
-- batch committed before, so the one that would finish the batch is seen (pg_settle_fenced
-- leaves it to the plain settlement, which finishes the batch and fires its hooks). One job a
-- statement, in id order: a statement of one parameter is planned once (a list's length makes
-- the plan for each list look cheaper, so it would be planned again at each exchange). Not in
-- name order: two exchanges that each settle jobs of the same two batches may deadlock; the
-- server then fails one, which is run again.
SELECT name FROM batches WHERE name = (SELECT batch FROM jobs WHERE id = %(id)s) FOR UPDATE

-- name: pg_settle_fenced
-- One outcome in one statement, decided ahead by the runner (lifecycle.settle_ours, from the
-- retry rules its claim returned): the job, only if still processing under this owner and
-- claim (the fence; the UPDATE locks the row and checks again after any wait); then its
-- history row; then, if it completed, its dependants wait on one fewer, and the runners are
-- woken (at commit) if any was unblocked. A row comes back only if the job was settled.
WITH settled AS ({settle_job}
      -- a job that others wait on for something else than its completion is left to the
      -- plain settlement, which cancels those whose condition it fails (see cascade)
      AND NOT EXISTS (SELECT 1 FROM job_deps WHERE dep_id = %(id)s AND cond <> 'completed')
      -- nor the last job of its batch that may still run: its end may finish the batch
      AND (jobs.batch IS NULL
           OR (SELECT SUM(n) FROM batch_counts
               WHERE batch_counts.batch = jobs.batch
                 AND batch_counts.state IN ('pending', 'processing', 'failed')) > 1)
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

-- name: start_attempt
-- The history entry of an attempt just claimed; its host is the claiming runner's.
INSERT INTO attempts (job_id, attempt, token, runner, host, started_at)
VALUES (%(id)s, %(attempt)s::integer, %(token)s::bigint, %(owner)s::text,
        (SELECT host FROM runners WHERE id = %(owner)s::text), %(now)s::bigint)

-- name: drop_attempt
-- An attempt given back by a stopping runner is not history: its number is used again.
DELETE FROM attempts
WHERE job_id = %(id)s AND token = %(token)s::bigint AND finished_at IS NULL

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

-- name: next_due
SELECT MIN(run_at) AS value FROM jobs
WHERE scheduled AND state IN ('pending', 'failed') AND run_at > %s::bigint AND NOT held

-- name: requires_met
-- (an expression) The job's required tags are all among this runner's `tags`; a job that
-- requires none (NULL) is not looked into.
(requires IS NULL OR requires <@ %(tags)s::text[])

-- name: save_progress
-- Fenced: only the job's current attempt, while it runs, records its progress.
UPDATE jobs
SET progress = jsonb_build_object('done', %(done)s::float8, 'total', %(total)s::float8,
                                  'message', %(message)s::text, 'at', %(now)s::bigint,
                                  'token', token)
WHERE id = %(id)s AND state = 'processing' AND token = %(token)s::bigint

-- name: start_attempt_set
-- What every claim writes on the jobs it starts: an attempt under this runner, its lease, a
-- new claim token.
SET state = 'processing', attempts = attempts + 1, token = token + 1,
    lease_owner = %(owner)s::text,
    lease_expires_at = %(lease_until)s::bigint, started_at = %(now)s::bigint,
    updated_at = %(now)s::bigint,
    cpu_ms = NULL, max_rss_bytes = NULL  -- this attempt's, once settled

-- name: pg_claim_candidate
-- (an expression) A job the plain claim may take, whichever index it is read from.
state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
AND queue NOT IN (SELECT name FROM queues WHERE paused)
AND (expires_at IS NULL OR expires_at > %(now)s::bigint)  -- expired: cancelled by maintenance
AND {requires_met}  -- a runner's tags
AND NOT EXISTS (
    SELECT 1 FROM queues
    WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND NOT paused
      AND (%(queues)s::text[] IS NULL OR name = ANY(%(queues)s::text[])))
AND NOT EXISTS (
    SELECT 1 FROM jobs AS locked
    WHERE locked.lock_key IS NOT NULL AND locked.state IN ('pending', 'failed')
      AND locked.waiting_on = 0)
-- Limits: only jobs whose every limit this runner enforces.
AND {enforced}
-- nor while a job of a batch with a concurrency limit may start
AND NOT EXISTS (
    SELECT 1 FROM jobs AS limited
    WHERE limited.batch_limited AND limited.state IN ('pending', 'failed')
      AND limited.waiting_on = 0)
