-- Named queries of the SQLite store for the runner's exchange (store/exchange.py).

-- name: promote_due
-- Scheduled jobs whose time has come join the claim index (see migration 0002).
UPDATE jobs INDEXED BY jobs_scheduled SET scheduled = 0
WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at <= ?
  AND held = 0  -- a held job stays scheduled, out of the claim, until released

-- name: claim
-- The claim when no flow control applies: no queue served has a limit and no job that may
-- start holds a lock (else it takes nothing and the exchange claims through `flow_*` instead).
-- A job not `scheduled` is due, whatever its run_at: this process's clock may run a few ms
-- behind its enqueuer's (another host's, or before a step), and must not hold it back.
-- A held job is still `scheduled` (promote_due skips it): never a candidate here.
UPDATE jobs
{start_attempt_set}
WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_claim
    WHERE (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
      AND {sqlite_claim_candidate}
    ORDER BY priority DESC, run_at, seq
    LIMIT :want)
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          max_retries, no_retry_exit_codes, batch, max_retries_set, silence_timeout,
          {claimed_limits}

-- name: claim_one_queue
-- `claim` for a runner of one queue (`queue`): read from that queue's own entries in claim
-- order, so a backlog of other queues is never walked.
UPDATE jobs
{start_attempt_set}
WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_queue_claim
    WHERE queue = :queue AND {sqlite_claim_candidate}
    ORDER BY priority DESC, run_at, seq
    LIMIT :want)
RETURNING id, attempts, token, command, cwd, env, timeout, queue, priority, run_at, seq,
          max_retries, no_retry_exit_codes, batch, max_retries_set, silence_timeout,
          {claimed_limits}

-- name: startable
-- (an expression) Whether a job of the served queues (`queues`, NULL: every queue) may start
-- now, flow control aside: due, waiting on nothing, its queue not paused.
EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_claim
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
      AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
      AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
      AND {requires_met})

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
            WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0)
        OR EXISTS (
            SELECT 1 FROM jobs INDEXED BY jobs_batch_waiting
            WHERE batch_limited = 1 AND state IN ('pending', 'failed') AND waiting_on = 0))
       AND {startable} AS value

-- name: release_job
UPDATE jobs
SET state = 'pending', attempts = attempts - 1, lease_owner = NULL, lease_expires_at = NULL,
    scheduled = 0, updated_at = :now
WHERE id = :id AND state = 'processing' AND lease_owner = :owner AND token = :token

-- name: start_attempt
-- The history entry of an attempt just claimed; its host is the claiming runner's.
INSERT INTO attempts (job_id, attempt, token, runner, host, started_at)
VALUES (:id, :attempt, :token, :owner, (SELECT host FROM runners WHERE id = :owner), :now)

-- name: drop_attempt
-- An attempt given back by a stopping runner is not history: its number is used again.
DELETE FROM attempts WHERE job_id = :id AND token = :token AND finished_at IS NULL

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

-- name: next_due
SELECT MIN(run_at) AS value FROM jobs INDEXED BY jobs_scheduled
WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at > ? AND held = 0

-- name: requires_met
-- (an expression) The job's required tags are all among this runner's `tags`; a job that
-- requires none (NULL) is not looked into.
(requires IS NULL OR NOT EXISTS (
    SELECT 1 FROM json_each(requires) WHERE value NOT IN (SELECT value FROM json_each(:tags))))

-- name: save_progress
-- Fenced: only the job's current attempt, while it runs, records its progress.
UPDATE jobs
SET progress = json_object('done', :done, 'total', :total, 'message', :message, 'at', :now,
                           'token', token)
WHERE id = :id AND state = 'processing' AND token = :token

-- name: start_attempt_set
-- What every claim writes on the jobs it starts: an attempt under this runner, its lease, a
-- new claim token.
SET state = 'processing', attempts = attempts + 1, token = token + 1, lease_owner = :owner,
    lease_expires_at = :lease_until, started_at = :now, updated_at = :now,
    cpu_ms = NULL, max_rss_bytes = NULL  -- this attempt's, once settled

-- name: sqlite_claim_candidate
-- (an expression) A job the plain claim may take, whichever index it is read from.
state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
AND (expires_at IS NULL OR expires_at > :now)  -- expired: cancelled by maintenance
AND {requires_met}  -- a runner's tags
AND NOT EXISTS (
    SELECT 1 FROM queues
    WHERE (concurrency IS NOT NULL OR rate_jobs IS NOT NULL) AND paused = 0
      AND (:queues IS NULL OR name IN (SELECT value FROM json_each(:queues))))
AND NOT EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_lock_waiting
    WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0)
-- nor while a job of a batch with a concurrency limit may start
AND NOT EXISTS (
    SELECT 1 FROM jobs INDEXED BY jobs_batch_waiting
    WHERE batch_limited = 1 AND state IN ('pending', 'failed') AND waiting_on = 0)
-- Limits: only jobs whose every limit this runner enforces.
AND {enforced}
