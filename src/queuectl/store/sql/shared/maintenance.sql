-- Named queries both stores run as written, for runners, leases, retention and schedules
-- (store/maintenance.py).

-- name: runners_before_migration
-- The runners as a store of any schema lists them: read before migrating (see
-- refuse_older_runners), so only the columns every schema has.
SELECT id, host, pid, pid_started, workers, queues, started_at, heartbeat_at, stop_requested
FROM runners ORDER BY started_at

-- name: runners_listed
-- (`runners` serves the check before a migration too, on the schema it migrates from.)
SELECT id, host, pid, pid_started, workers, queues, started_at, heartbeat_at, stop_requested,
       enforces, tags
FROM runners ORDER BY started_at

-- name: running_jobs
SELECT lease_owner, id FROM jobs WHERE state = 'processing' ORDER BY lease_owner, started_at

-- name: schedules
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules ORDER BY name

-- name: next_schedule
SELECT MIN(next_at) AS value FROM schedules
