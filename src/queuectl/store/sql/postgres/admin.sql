-- Named queries of the PostgreSQL store for configuration, queues, hooks and reset
-- (store/admin.py).

-- name: config_set
INSERT INTO config (key, value) VALUES (%s, %s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (%s, %s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- Hooks and reset
-- name: upsert_hook
INSERT INTO hooks (name, events, queue, job, created_at)
VALUES (%(name)s, %(events)s, %(queue)s, %(job)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET events = excluded.events, queue = excluded.queue,
    job = excluded.job, created_at = excluded.created_at

-- name: delete_hook
DELETE FROM hooks WHERE name = %s

-- name: reset_attempts
-- TRUNCATE: no per-row trigger over a million jobs; the identity keeps counting.
TRUNCATE attempts

-- name: reset_deps
TRUNCATE job_deps

-- name: reset_jobs
TRUNCATE jobs

-- name: reset_counts
-- TRUNCATE fires no row or statement trigger: the counters are emptied with the jobs.
TRUNCATE job_counts, job_count_deltas

-- name: reset_finished_minutes
TRUNCATE finished_minutes

-- name: reset_counters
TRUNCATE counters, counter_deltas
