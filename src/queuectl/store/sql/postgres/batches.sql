-- Named queries of the PostgreSQL store for batches (store/batches.py).

-- name: batch_rows
-- Every batch, or the one named (`name`), with its counts per state (a JSON object).
SELECT name, concurrency, created_at, started_at, ended_at, finished_at,
       (SELECT json_object_agg(state, n) FROM batch_counts
        WHERE batch_counts.batch = batches.name AND n > 0) AS counts
FROM batches WHERE %(name)s::text IS NULL OR name = %(name)s::text
ORDER BY created_at, name

-- name: batch_set_limit
UPDATE batches SET concurrency = %(concurrency)s::integer WHERE name = %(name)s::text

-- name: list_jobs_by_batch
SELECT {job_columns} FROM jobs
WHERE batch = %(batch)s::text AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND seq < %(before)s::bigint
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_batch_state
-- (`BETWEEN` and the index's own order: see list_jobs_by_state.)
SELECT {job_columns} FROM jobs
WHERE batch = %(batch)s::text AND state BETWEEN %(state)s::text AND %(state)s::text
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text) AND seq < %(before)s::bigint
ORDER BY state DESC, seq DESC LIMIT %(limit)s::bigint

-- name: bulk_batch_of_batch
-- The next jobs of a bulk change in one state of one batch (as bulk_batch).
SELECT id, seq FROM jobs
WHERE batch = %(in_batch)s::text AND state BETWEEN %(state)s::text AND %(state)s::text
  AND seq > %(after)s::bigint AND seq <= %(upto)s::bigint
ORDER BY state, seq LIMIT %(batch)s::bigint

-- name: batch_finish
-- The batches named that have just become finished, marked so: each finishes once, however
-- many of its jobs end in the transaction, until a job of it runs again. Every change to a
-- batch's jobs locked its row first (the counters' trigger), so this transaction's later
-- statement sees every other change of the batch committed. `completed`: every job of it
-- completed.
UPDATE batches SET finished_at = %(now)s::bigint
WHERE name = ANY(%(names)s::text[]) AND finished_at IS NULL
{batch_finish_tail}

-- name: batch_release_deps
-- The jobs waiting for a batch that just finished, no longer waiting for it.
DELETE FROM batch_deps WHERE batch = %(name)s::text RETURNING job_id

-- name: batch_unblock
-- Jobs whose batch dependency is met wait on one fewer.
UPDATE jobs SET waiting_on = waiting_on - 1
WHERE id = ANY(%(ids)s::text[]) AND state = 'pending' AND waiting_on > 0

-- name: lock_batch
-- A batch a new job waits for, locked until our commit: it cannot finish between batch_state's
-- read and our commit, or its finishing would miss the job being inserted and leave it waiting
-- forever. Apart from batch_state: a statement that waited for the lock sees the batch's row
-- as committed, but every other table (its counts) as before the wait.
SELECT 1 FROM batches WHERE name = %(name)s::text FOR SHARE

-- name: batch_state
-- A batch a new job waits for (locked by lock_batch): whether it is finished, and whether all
-- of it completed.
SELECT name, finished_at,
       NOT EXISTS (SELECT 1 FROM batch_counts
                   WHERE batch_counts.batch = batches.name
                     AND state IN ('dead', 'cancelled') AND n > 0) AS completed
FROM batches WHERE name = %(name)s::text

-- name: insert_batch_dep
INSERT INTO batch_deps (batch, job_id) VALUES (%(batch)s, %(job_id)s) ON CONFLICT DO NOTHING

-- name: batch_waits
SELECT batch FROM batch_deps WHERE job_id = %(id)s::text
