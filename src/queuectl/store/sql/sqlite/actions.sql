-- Named queries of the SQLite store for cancel, requeue, purge (store/actions.py).

-- name: close_attempt
-- A running attempt cancelled: it ends now.
UPDATE attempts
SET finished_at = :now, error = 'cancelled', duration_ms = MAX(0, :now - started_at)
WHERE seq = (SELECT MAX(seq) FROM attempts WHERE job_id = :id) AND finished_at IS NULL

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
    duration_ms = NULL, waiting_on = again.value + (lease_owner IS NOT NULL),
    -- run again now: not held, and a deadline passed no longer applies
    held = 0, expires_at = CASE WHEN expires_at > :now THEN expires_at END
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
