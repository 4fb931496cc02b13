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
