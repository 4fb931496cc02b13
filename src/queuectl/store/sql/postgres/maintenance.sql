-- Named queries of the PostgreSQL store for runners, leases, retention and schedules
-- (store/maintenance.py).

-- name: expired_dying
-- Attempts cancelled while they ran whose runner is gone (`owners`) or stopped renewing
-- their lease: nobody is left to say their processes are gone.
SELECT id, token, lease_owner FROM jobs
WHERE lease_owner IS NOT NULL AND state <> 'processing'
  AND (lease_owner = ANY(%(owners)s::text[])
       OR lease_expires_at < %(now)s::bigint AND lease_owner <> ALL(%(exclude)s::text[]))
FOR UPDATE SKIP LOCKED

-- name: expired_jobs
-- SKIP LOCKED: a row locked now is being settled by its owner or reaped by another runner.
-- A runner never reaps its own leases, nor a live local runner's (`exclude`): they renew them.
SELECT id, attempts, token, lease_owner FROM jobs
WHERE state = 'processing' AND lease_expires_at < %(now)s::bigint
  AND lease_owner <> ALL(%(exclude)s::text[])
FOR UPDATE SKIP LOCKED

-- name: housekeeping
-- What a runner's housekeeping reads, in one statement (one snapshot, one round trip): the
-- jobs leased to it (with their claims' tokens); every registered runner, itself included (its stop request; whether it is
-- registered still); whether another runner's lease expired (a dying attempt's too: a
-- runner gone without a word leaves it, and nothing else would reap it); the next schedule
-- slot; whether a job of its queues may start (the fallback poll, for a lost wakeup); the configuration;
-- and how many count deltas piled up (at most `deltas`). Each part probes an index.
SELECT
    (SELECT json_agg(json_build_array(id, token)) FROM jobs
     WHERE lease_owner = %(owner)s::text AND state = 'processing') AS owned,
    (SELECT json_agg(r) FROM (
        SELECT id, host, pid, pid_started, workers, queues, started_at, heartbeat_at,
               stop_requested
        FROM runners) AS r) AS runners,
    EXISTS (SELECT 1 FROM jobs
            WHERE state = 'processing' AND lease_expires_at < %(now)s::bigint
              AND lease_owner <> %(owner)s::text)
    OR EXISTS (SELECT 1 FROM jobs
               WHERE lease_owner IS NOT NULL AND state <> 'processing'
                 AND lease_expires_at < %(now)s::bigint
                 AND lease_owner <> %(owner)s::text) AS expired,
    (SELECT MIN(next_at) FROM schedules) AS next_schedule,
    {startable} OR EXISTS (
        SELECT 1 FROM jobs
        WHERE scheduled AND state IN ('pending', 'failed') AND run_at <= %(now)s::bigint
          AND NOT held AND waiting_on = 0 AND queue NOT IN (SELECT name FROM queues WHERE paused)
          AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
          AND {requires_met}) AS startable,
    (SELECT json_object_agg(key, value) FROM config) AS config,
    (SELECT COUNT(*) FROM (SELECT 1 FROM job_count_deltas LIMIT %(deltas)s::bigint) AS piled)
        AS deltas

-- name: register_runner
INSERT INTO runners (id, host, pid, pid_started, workers, queues, started_at, heartbeat_at,
                     stop_requested, enforces, tags)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, FALSE, %s, %s)
ON CONFLICT (id) DO UPDATE
SET host = excluded.host, pid = excluded.pid, pid_started = excluded.pid_started,
    workers = excluded.workers, queues = excluded.queues, started_at = excluded.started_at,
    heartbeat_at = excluded.heartbeat_at, stop_requested = FALSE,
    enforces = excluded.enforces, tags = excluded.tags

-- name: beat_runner
UPDATE runners SET heartbeat_at = %s::bigint WHERE id = %s RETURNING stop_requested

-- name: renew_leases
UPDATE jobs SET lease_expires_at = %s::bigint WHERE lease_owner = %s AND state = 'processing'

-- name: renew_dying
-- The leases of this runner's cancelled attempts whose processes it is still killing.
UPDATE jobs SET lease_expires_at = %s::bigint
WHERE lease_owner = %s AND state <> 'processing'

-- name: unregister_runner
DELETE FROM runners WHERE id = %s

-- name: request_stop
UPDATE runners SET stop_requested = TRUE

-- name: withdraw_stop
UPDATE runners SET stop_requested = FALSE WHERE stop_requested = TRUE

-- name: jobs_of_owner
SELECT id, attempts, token FROM jobs WHERE state = 'processing' AND lease_owner = %s
FOR UPDATE SKIP LOCKED

-- name: upsert_schedule
INSERT INTO schedules (name, cron, every_s, tz, job, created_at, last_at, next_at)
VALUES (%(name)s, %(cron)s, %(every_s)s, %(tz)s, %(job)s, %(now)s, NULL, %(next_at)s)
ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, every_s = excluded.every_s,
    tz = excluded.tz, job = excluded.job, created_at = excluded.created_at,
    next_at = excluded.next_at

-- name: delete_schedule
DELETE FROM schedules WHERE name = %s

-- name: due_schedules
-- SKIP LOCKED: a slot another runner is firing right now is its to fire; once it commits,
-- the schedule's next_at is past this one's `now` and it is not due here any more.
SELECT name, cron, every_s, tz, job, created_at, last_at, next_at FROM schedules
WHERE next_at <= %s::bigint ORDER BY next_at
FOR UPDATE SKIP LOCKED

-- name: advance_schedule
UPDATE schedules SET last_at = %(now)s::bigint, next_at = %(next_at)s::bigint
WHERE name = %(name)s

-- name: forget_finished_minutes
-- The rows of minutes no read looks at any more.
DELETE FROM finished_minutes WHERE minute < %(since)s::bigint / 60000

-- name: forget_usage_minutes
-- The per-minute counts of what attempts cost, once older than `status --since` reads; the
-- totals (minute -1) stay.
DELETE FROM usage_minutes WHERE minute >= 0 AND minute < %(since)s::bigint / 60000
