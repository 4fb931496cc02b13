-- Named queries of the PostgreSQL store for cancel, requeue, purge (store/actions.py).

-- name: close_attempt
-- A running attempt cancelled: it ends now.
UPDATE attempts
SET finished_at = %(now)s::bigint, error = 'cancelled',
    duration_ms = GREATEST(0, %(now)s::bigint - started_at)
WHERE seq = (SELECT MAX(seq) FROM attempts WHERE job_id = %(id)s) AND finished_at IS NULL

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
    -- run again now: not held, and a deadline passed no longer applies
    held = false, expires_at = CASE WHEN expires_at > %(now)s::bigint THEN expires_at END,
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
