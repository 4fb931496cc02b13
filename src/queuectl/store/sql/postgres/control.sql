-- Named queries of the PostgreSQL store for control before a job runs: hold, release, edit
-- and the expiry of jobs not started in time (store/control.py).

-- name: hold_jobs
-- A held job stays `scheduled` until released, out of every claim's index, and promote_due
-- skips it. A claim that locked the row first wins: this then sees it processing.
UPDATE jobs SET held = true, scheduled = true, updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND state IN ('pending', 'failed') AND NOT held
RETURNING id

-- name: release_jobs
-- Scheduled again: the next promote_due lets it be claimed once its run_at has come.
UPDATE jobs SET held = false, scheduled = true, updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND held
RETURNING id

-- name: hold_queue_batch
-- The next batch of a queue's jobs in one state held, after the cursor `after` (a seq).
UPDATE jobs SET held = true, scheduled = true, updated_at = %(now)s::bigint
WHERE seq IN (
    SELECT seq FROM jobs
    WHERE queue = %(queue)s AND state = %(state)s AND seq > %(after)s::bigint AND NOT held
    ORDER BY seq LIMIT %(batch)s::bigint
    FOR UPDATE SKIP LOCKED)
  AND state = %(state)s
RETURNING seq

-- name: release_queue_batch
UPDATE jobs SET held = false, scheduled = true, updated_at = %(now)s::bigint
WHERE seq IN (
    SELECT seq FROM jobs WHERE queue = %(queue)s AND held
    ORDER BY seq LIMIT %(batch)s::bigint)
RETURNING seq

-- name: unstarted_past_deadline
-- A batch of the jobs whose deadline passed before they started, to cancel, locked in id
-- order as other changes lock them.
SELECT {job_columns} FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE expires_at IS NOT NULL AND expires_at <= %(now)s::bigint
      AND state IN ('pending', 'failed')
    ORDER BY expires_at LIMIT %(batch)s::bigint)
ORDER BY id FOR UPDATE SKIP LOCKED

-- name: expire_unstarted_jobs
UPDATE jobs
SET state = 'cancelled', last_error = 'expired before it started',
    finished_at = %(now)s::bigint, updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND state IN ('pending', 'failed') AND lease_owner IS NULL
RETURNING id

-- name: list_held
-- Held jobs, newest first, of one queue and state or any (`list --held`): held jobs are few
-- next to the rest, and their own index holds them.
SELECT {job_columns} FROM jobs
WHERE held AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text) AND seq < %(before)s::bigint
ORDER BY seq DESC LIMIT %(limit)s::bigint
