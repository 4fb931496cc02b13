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
