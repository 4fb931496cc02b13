-- Named queries of the SQLite store for configuration, queues, hooks and reset (store/admin.py).

-- name: config_all
SELECT key, value FROM config

-- name: config_set
INSERT INTO config (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value

-- name: queues
SELECT name, paused FROM queues

-- name: set_paused
INSERT INTO queues (name, paused) VALUES (?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused

-- Hooks and reset
-- name: hooks
SELECT name, events, queue, job, created_at FROM hooks ORDER BY name

-- name: upsert_hook
INSERT INTO hooks (name, events, queue, job, created_at)
VALUES (:name, :events, :queue, :job, :now)
ON CONFLICT (name) DO UPDATE SET events = excluded.events, queue = excluded.queue,
    job = excluded.job, created_at = excluded.created_at

-- name: delete_hook
DELETE FROM hooks WHERE name = ?

-- name: live_runners
SELECT COUNT(*) AS value FROM runners

-- name: job_totals
SELECT (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM attempts) AS attempts

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

-- name: reset_queue_starts
DELETE FROM queue_starts

-- name: reset_counters
DELETE FROM counters

-- name: reset_schedules
DELETE FROM schedules

-- name: reset_hooks
DELETE FROM hooks

-- name: reset_queues
DELETE FROM queues

-- name: reset_config
DELETE FROM config

-- name: reset_usage_minutes
-- What the deleted jobs' attempts cost, by the minute; the totals stay, as the counters do.
DELETE FROM usage_minutes WHERE minute >= 0

-- name: reset_usage_totals
DELETE FROM usage_minutes
