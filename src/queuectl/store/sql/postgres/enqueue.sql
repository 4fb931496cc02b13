-- Named queries of the PostgreSQL store for enqueue (store/enqueue.py).

-- name: pg_copy_jobs
-- insert_jobs' columns for a batch, streamed: one statement, so the counters' statement
-- trigger appends one delta row per queue and state of the batch, not one per job.
COPY jobs ({insert_columns}) FROM STDIN

-- name: insert_dep
INSERT INTO job_deps (dep_id, job_id, cond) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING

-- name: find_unique
SELECT id FROM jobs WHERE unique_key = %s AND state IN ('pending', 'processing', 'failed')

-- name: dep_states
-- FOR SHARE: a dependency cannot finish between this read and our commit, or its dependants
-- update would miss the job being inserted and leave it waiting forever.
SELECT id, state FROM jobs WHERE id = ANY(%s::text[]) FOR SHARE

-- name: jobs_by_ids
SELECT {job_columns} FROM jobs WHERE id = ANY(%s::text[])

-- name: batch_open
-- A batch made on first use; `set_limit`: its concurrency limit set to `concurrency` (an
-- array's own limit), else kept. Its limit now (the row stays locked: the counters' trigger locks
-- it too).
INSERT INTO batches AS b (name, concurrency, created_at)
VALUES (%(name)s, %(concurrency)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET
    concurrency = CASE WHEN %(set_limit)s THEN excluded.concurrency ELSE b.concurrency END,
    finished_at = NULL  -- a job joins it: it is no longer finished
RETURNING concurrency AS value

-- name: batch_limit_jobs
-- A batch's jobs follow its limit: those of a limited batch are claimed through flow control.
UPDATE jobs SET batch_limited = %(limited)s
WHERE batch = %(name)s AND batch_limited <> %(limited)s

-- name: batch_count_inserted
-- Jobs just inserted into a batch, counted once per enqueued batch of rows.
INSERT INTO batch_counts AS c (batch, state, n) VALUES (%(batch)s, %(state)s, %(n)s)
ON CONFLICT (batch, state) DO UPDATE SET n = c.n + excluded.n
