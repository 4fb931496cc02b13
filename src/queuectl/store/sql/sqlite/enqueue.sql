-- Named queries of the SQLite store for enqueue (store/enqueue.py).

-- name: sqlite_insert_jobs_shared
-- Rows of insert_jobs that differ only in id and command, as most of a bulk enqueue's do: the
-- other columns bound once for the statement, the store repeating the (id, command) pair after
-- VALUES once per row. Binding a parameter costs about what storing its value does, so this
-- halves the cost of such a row. The rows go in the order of the VALUES list.
INSERT INTO jobs ({insert_columns})
SELECT column1, column2, {shared_values}
FROM (VALUES (?, ?))

-- name: sqlite_count_inserted
-- Jobs just inserted, added to the counters once per batch (migration 0007): how many went
-- into each queue and state. New jobs have no attempts yet.
INSERT INTO job_counts (queue, state, n, attempts) VALUES (?, ?, ?, 0)
ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n

-- name: sqlite_count_inserted_ids
-- The same for jobs just inserted under these new ids (a JSON list), where an insert may have
-- been skipped (a hook job whose unique_key is held): the rows say which went in.
INSERT INTO job_counts (queue, state, n, attempts)
SELECT queue, state, COUNT(*), 0 FROM jobs WHERE id IN (SELECT value FROM json_each(?))
GROUP BY queue, state
ON CONFLICT (queue, state) DO UPDATE SET n = n + excluded.n

-- name: sqlite_count_enqueued
-- The same batch added to the counters that only go up (migration 0012): the jobs enqueued
-- into each queue, in each state (cancelled: a dependency had failed).
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
VALUES (?, 'enqueued', '', ?, 0, ?, 0)
ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE SET n = n + excluded.n

-- name: sqlite_count_enqueued_ids
-- The same for jobs just inserted under these new ids, as sqlite_count_inserted_ids.
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
SELECT queue, 'enqueued', '', state, 0, COUNT(*), 0 FROM jobs
WHERE id IN (SELECT value FROM json_each(?))
GROUP BY queue, state
ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE SET n = n + excluded.n

-- name: insert_dep
INSERT OR IGNORE INTO job_deps (dep_id, job_id, cond) VALUES (?, ?, ?)

-- name: find_unique
SELECT id FROM jobs WHERE unique_key = ? AND state IN ('pending', 'processing', 'failed')

-- name: dep_states
SELECT id, state FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: jobs_by_ids
SELECT {job_columns} FROM jobs WHERE id IN (SELECT value FROM json_each(?))

-- name: batch_open
-- A batch made on first use; `set_limit`: its concurrency limit set to `concurrency` (an
-- array's `%N`), else kept. Its limit now.
INSERT INTO batches (name, concurrency, created_at) VALUES (:name, :concurrency, :now)
ON CONFLICT (name) DO UPDATE SET
    concurrency = CASE WHEN :set_limit THEN excluded.concurrency ELSE batches.concurrency END,
    finished_at = NULL  -- a job joins it: it is no longer finished
RETURNING concurrency AS value

-- name: batch_limit_jobs
-- A batch's jobs follow its limit: those of a limited batch are claimed through flow control.
UPDATE jobs INDEXED BY jobs_by_batch SET batch_limited = :limited
WHERE batch = :name AND batch_limited <> :limited

-- name: batch_count_inserted
-- Jobs just inserted into a batch, counted once per enqueued batch of rows.
INSERT INTO batch_counts (batch, state, n) VALUES (:batch, :state, :n)
ON CONFLICT (batch, state) DO UPDATE SET n = n + excluded.n
