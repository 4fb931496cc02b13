-- Named queries of the SQLite store for configuration, queues, hooks and reset (store/admin.py).

-- name: config_set
INSERT INTO config (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- Hooks and reset
-- name: upsert_hook
INSERT INTO hooks (name, events, queue, job, created_at)
VALUES (:name, :events, :queue, :job, :now)
ON CONFLICT (name) DO UPDATE SET events = excluded.events, queue = excluded.queue,
    job = excluded.job, created_at = excluded.created_at

-- name: delete_hook
DELETE FROM hooks WHERE name = ?

-- name: reset_attempts
DELETE FROM attempts

-- name: reset_deps
DELETE FROM job_deps

-- name: reset_jobs
DELETE FROM jobs

-- name: reset_counts
-- Nothing left to count (the triggers left rows of zeros).
DELETE FROM job_counts

-- name: reset_finished_minutes
DELETE FROM finished_minutes

-- name: reset_counters
DELETE FROM counters
