-- Named queries of the SQLite store for runners, leases, retention and schedules
-- (store/maintenance.py).

-- name: expired_dying
-- Attempts cancelled while they ran whose runner is gone (`owners`) or stopped renewing
-- their lease: nobody is left to say their processes are gone.
SELECT id, token, lease_owner FROM jobs INDEXED BY jobs_dying
WHERE lease_owner IS NOT NULL AND state <> 'processing'
  AND (lease_owner IN (SELECT value FROM json_each(:owners))
       OR lease_expires_at < :now AND lease_owner NOT IN (SELECT value FROM json_each(:exclude)))

-- name: expired_jobs
-- A runner never reaps its own leases, nor a live local runner's (`exclude`): they renew them.
SELECT id, attempts, token, lease_owner FROM jobs
WHERE state = 'processing' AND lease_expires_at < :now
  AND lease_owner NOT IN (SELECT value FROM json_each(:exclude))

-- name: housekeeping
-- What a runner's housekeeping reads, in one statement: the jobs leased to it; every
-- registered runner, itself included (its stop request; whether it is registered still);
-- (with their claims' tokens); whether another runner's lease expired (a dying attempt's
-- too: a runner gone without a word leaves it, and nothing else would reap it); the next
-- schedule slot; whether a job of its queues may start (the fallback poll, for a lost
-- wakeup); the configuration; `deltas` is PostgreSQL's (SQLite updates its counters in place).
SELECT
    (SELECT json_group_array(json_array(id, token)) FROM jobs
     WHERE lease_owner = :owner AND state = 'processing') AS owned,
    (SELECT json_group_array(json_object(
        'id', id, 'host', host, 'pid', pid, 'pid_started', pid_started, 'workers', workers,
        'queues', json(queues), 'started_at', started_at, 'heartbeat_at', heartbeat_at,
        'stop_requested', stop_requested)) FROM runners) AS runners,
    EXISTS (SELECT 1 FROM jobs
            WHERE state = 'processing' AND lease_expires_at < :now
              AND lease_owner <> :owner)
    OR EXISTS (SELECT 1 FROM jobs INDEXED BY jobs_dying
               WHERE lease_owner IS NOT NULL AND state <> 'processing'
                 AND lease_expires_at < :now AND lease_owner <> :owner) AS expired,
    (SELECT MIN(next_at) FROM schedules) AS next_schedule,
    {startable} OR EXISTS (
        SELECT 1 FROM jobs INDEXED BY jobs_scheduled
        WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at <= :now
          AND held = 0 AND waiting_on = 0 AND queue NOT IN (SELECT name FROM queues WHERE paused = 1)
          AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
          AND {requires_met})
        AS startable,
    (SELECT json_group_object(key, json(value)) FROM config) AS config,
    0 AS deltas

-- name: register_runner
INSERT OR REPLACE INTO runners (id, host, pid, pid_started, workers, queues, started_at,
                                heartbeat_at, stop_requested, enforces, tags)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)

-- name: beat_runner
UPDATE runners SET heartbeat_at = ? WHERE id = ? RETURNING stop_requested

-- name: renew_leases
UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'processing'

-- name: renew_dying
-- The leases of this runner's cancelled attempts whose processes it is still killing.
UPDATE jobs INDEXED BY jobs_dying SET lease_expires_at = ?
WHERE lease_owner = ? AND lease_owner IS NOT NULL AND state <> 'processing'

-- name: unregister_runner
DELETE FROM runners WHERE id = ?

-- name: request_stop
UPDATE runners SET stop_requested = 1

-- name: withdraw_stop
UPDATE runners SET stop_requested = 0 WHERE stop_requested = 1

-- name: jobs_of_owner
SELECT id, attempts, token FROM jobs WHERE state = 'processing' AND lease_owner = ?

-- name: upsert_schedule
INSERT INTO schedules (name, cron, every_s, tz, job, created_at, last_at, next_at)
VALUES (:name, :cron, :every_s, :tz, :job, :now, NULL, :next_at)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, every_s = excluded.every_s,
    tz = excluded.tz, job = excluded.job, created_at = excluded.created_at,
    next_at = excluded.next_at

-- name: delete_schedule
DELETE FROM schedules WHERE name = ?

-- name: due_schedules
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules
WHERE next_at <= ? ORDER BY next_at

-- name: advance_schedule
UPDATE schedules SET last_at = :now, next_at = :next_at WHERE name = :name

-- name: forget_finished_minutes
-- The rows of minutes no read looks at any more.
DELETE FROM finished_minutes WHERE minute < :since / 60000

-- name: forget_usage_minutes
-- The per-minute counts of what attempts cost, once older than `status --since` reads; the
-- totals (minute -1) stay.
DELETE FROM usage_minutes WHERE minute >= 0 AND minute < :since / 60000
