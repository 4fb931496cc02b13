-- Named queries of the SQLite store for batches (store/batches.py).

-- name: batch_rows
-- Every batch, or the one named (`name`), with its counts per state (a JSON object).
SELECT name, concurrency, created_at, started_at, ended_at, finished_at,
       (SELECT json_group_object(state, n) FROM batch_counts
        WHERE batch_counts.batch = batches.name AND n > 0) AS counts
FROM batches WHERE :name IS NULL OR name = :name
ORDER BY created_at, name

-- name: batch_set_limit
UPDATE batches SET concurrency = :concurrency WHERE name = :name

-- name: list_jobs_by_batch
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_batch
WHERE batch = :batch AND (:queue IS NULL OR queue = :queue) AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_batch_state
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_batch
WHERE batch = :batch AND state = :state AND (:queue IS NULL OR queue = :queue)
  AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: bulk_batch_of_batch
-- The next jobs of a bulk change in one state of one batch (as bulk_batch).
SELECT id, seq FROM jobs INDEXED BY jobs_by_batch
WHERE batch = :in_batch AND state = :state AND seq > :after AND seq <= :upto
ORDER BY seq LIMIT :batch

-- name: batch_finish
-- The batches named (a JSON list) that have just become finished, marked so: each finishes
-- once, however many of its jobs end in the transaction, until a job of it runs again.
-- `completed`: every job of it completed.
UPDATE batches SET finished_at = :now
WHERE name IN (SELECT value FROM json_each(:names)) AND finished_at IS NULL
{batch_finish_tail}

-- name: batch_release_deps
-- The jobs waiting for a batch that just finished, no longer waiting for it.
DELETE FROM batch_deps WHERE batch = :name RETURNING job_id

-- name: batch_unblock
-- Jobs whose batch dependency is met (a JSON list) wait on one fewer.
UPDATE jobs SET waiting_on = waiting_on - 1
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state = 'pending' AND waiting_on > 0

-- name: lock_batch
-- Nothing to lock: the enqueue's write transaction holds the store.
SELECT 1 FROM batches WHERE name = :name

-- name: batch_state
-- A batch a new job waits for: whether it is finished, and whether all of it completed.
SELECT name, finished_at,
       NOT EXISTS (SELECT 1 FROM batch_counts
                   WHERE batch_counts.batch = batches.name
                     AND state IN ('dead', 'cancelled') AND n > 0) AS completed
FROM batches WHERE name = :name

-- name: insert_batch_dep
INSERT OR IGNORE INTO batch_deps (batch, job_id) VALUES (:batch, :job_id)

-- name: batch_waits
SELECT batch FROM batch_deps WHERE job_id = :id
