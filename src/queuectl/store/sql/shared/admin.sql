-- Named queries both stores run as written, for configuration, queues, hooks and reset
-- (store/admin.py).

-- name: config_all
SELECT key, value FROM config

-- name: queues
SELECT name, paused FROM queues

-- name: hooks
SELECT name, events, queue, job, created_at FROM hooks ORDER BY name

-- name: live_runners
SELECT COUNT(*) AS value FROM runners

-- name: job_totals
SELECT (SELECT COUNT(*) FROM jobs) AS jobs, (SELECT COUNT(*) FROM attempts) AS attempts

-- name: reset_queue_starts
DELETE FROM queue_starts

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
