-- Named queries of the SQLite store for settling attempts and firing hooks (store/settle.py,
-- store/hooks.py).

-- name: fenced_jobs
-- The attempts still ours among those named; the caller compares each claim's token.
-- has_dependants spares the update of dependants when there are none (the common case).
SELECT id, attempts, token, max_retries, max_retries_set, no_retry_exit_codes, queue, batch,
       EXISTS (SELECT 1 FROM job_deps WHERE dep_id = jobs.id) AS has_dependants
FROM jobs
WHERE id IN (SELECT value FROM json_each(?)) AND state = 'processing' AND lease_owner = ?

-- name: settle_job
UPDATE jobs
SET state = :state, run_at = COALESCE(:run_at, run_at), scheduled = COALESCE(:run_at > :now, 0),
    finished_at = :finished_at, exit_code = :exit_code, last_error = :last_error,
    duration_ms = COALESCE(:duration_ms, MAX(0, :finished_at - started_at)),
    updated_at = :now, lease_owner = NULL, lease_expires_at = NULL,
    cpu_ms = :cpu_ms, max_rss_bytes = :max_rss_bytes  -- counted by jobs_ended (0018)
WHERE id = :id AND state = 'processing' AND lease_owner = :owner AND token = :token

-- name: let_go
-- The processes of an attempt no longer processing (cancelled) are gone, as its runner says
-- (or its runner is gone): its lease, which held its lock and its queue's slot, is let go. A
-- job run again meanwhile waited on this (see `requeue`): it may start now.
UPDATE jobs
SET lease_owner = NULL, lease_expires_at = NULL,
    waiting_on = waiting_on - (state IN ('pending', 'failed'))
WHERE id = :id AND lease_owner = :owner AND token = :token AND state <> 'processing'

-- name: finish_attempt
-- The entry of this claim of the job, if still open. A null output keeps what the live copy
-- saved.
UPDATE attempts
SET finished_at = :finished_at, exit_code = :exit_code, error = :error,
    duration_ms = COALESCE(:duration_ms, MAX(0, :finished_at - started_at)),
    output = COALESCE(:output, output), output_dropped = COALESCE(:dropped, output_dropped),
    cpu_ms = :cpu_ms, max_rss_bytes = :max_rss_bytes
WHERE job_id = :id AND token = :token AND finished_at IS NULL

-- name: unblock_dependants
-- Dependants of the jobs that just completed (a JSON list) wait on that many fewer.
-- (`+state`: the planner must go through job_deps, not scan every pending job)
UPDATE jobs
SET waiting_on = waiting_on - (
    SELECT COUNT(*) FROM job_deps
    WHERE job_deps.job_id = jobs.id AND job_deps.dep_id IN (SELECT value FROM json_each(:ids))
      AND job_deps.cond IN ('completed', 'finished'))  -- those waiting for a failure: cascade
WHERE id IN (SELECT job_id FROM job_deps WHERE dep_id IN (SELECT value FROM json_each(:ids)))
  AND +state = 'pending' AND waiting_on > 0

-- name: dependants_of
-- The edges from the jobs named (a JSON list) to their dependants.
SELECT dep_id, job_id, cond FROM job_deps WHERE dep_id IN (SELECT value FROM json_each(?))

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
RETURNING id, queue, attempts, exit_code, last_error, made_by, batch

-- name: hook_subjects
-- The queue of each settled job, and whether a hook made it (such jobs fire no hooks).
SELECT id, queue, made_by FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: insert_hook_job
-- A job's row (store/rows.py's JobRow) and made_by; a hook job whose unique_key an active job
-- holds is not inserted (the hook's way to send one notification for a burst of events).
INSERT INTO jobs ({insert_columns}, made_by)
VALUES ({insert_values}, ?)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING

-- name: unblock_met
-- Dependants whose condition a dependency's end met (a JSON object: id -> how many of theirs)
-- wait on that many fewer. (`+state`: each row found by its id.)
UPDATE jobs SET waiting_on = MAX(0, waiting_on - met.value)
FROM json_each(:jobs) AS met
WHERE jobs.id = met.key AND +jobs.state = 'pending' AND waiting_on > 0
