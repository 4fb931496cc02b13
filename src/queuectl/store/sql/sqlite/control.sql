-- Named queries of the SQLite store for control before a job runs: hold, release, edit and
-- the expiry of jobs not started in time (store/control.py).

-- name: hold_jobs
-- A held job stays `scheduled` until released, out of every claim's index, and promote_due
-- skips it (`+state`: each row found by its id).
UPDATE jobs SET held = 1, scheduled = 1, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN ('pending', 'failed') AND held = 0
RETURNING id

-- name: release_jobs
-- Scheduled again: the next promote_due lets it be claimed once its run_at has come.
UPDATE jobs SET held = 0, scheduled = 1, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND held = 1
RETURNING id

-- name: hold_queue_batch
-- The next batch of a queue's jobs in one state held, after the cursor `after` (a seq).
UPDATE jobs SET held = 1, scheduled = 1, updated_at = :now
WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_by_queue_state
    WHERE queue = :queue AND state = :state AND seq > :after AND held = 0
    ORDER BY seq LIMIT :batch)
RETURNING seq

-- name: release_queue_batch
UPDATE jobs SET held = 0, scheduled = 1, updated_at = :now
WHERE seq IN (
    SELECT seq FROM jobs INDEXED BY jobs_held
    WHERE queue = :queue AND held = 1
    ORDER BY seq LIMIT :batch)
RETURNING seq

-- name: unstarted_past_deadline
-- A batch of the jobs whose deadline passed before they started, to cancel.
SELECT {job_columns} FROM jobs INDEXED BY jobs_expiring
WHERE expires_at IS NOT NULL AND expires_at <= :now AND state IN ('pending', 'failed')
ORDER BY expires_at LIMIT :batch

-- name: expire_unstarted_jobs
UPDATE jobs
SET state = 'cancelled', last_error = 'expired before it started', finished_at = :now,
    updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN ('pending', 'failed')
  AND lease_owner IS NULL
RETURNING id

-- name: list_held
-- Held jobs, newest first, of one queue and state or any (`list --held`): held jobs are few
-- next to the rest, and their own index holds them.
SELECT {job_columns} FROM jobs INDEXED BY jobs_held
WHERE held = 1 AND (:queue IS NULL OR queue = :queue) AND (:state IS NULL OR state = :state)
  AND seq < :before
ORDER BY seq DESC LIMIT :limit
