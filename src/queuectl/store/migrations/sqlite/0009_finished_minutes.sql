-- What finished in each recent minute, kept as it happens, so that the dashboard's chart and
-- /metrics' duration histogram read a few rows however many jobs finished lately (they read
-- every job of the last hour). A row per minute, queue, state and duration bucket: the
-- smallest bound in ms that holds the attempt's duration (the bounds of DURATION_BOUNDS_MS in
-- store/__init__.py), -1 for none recorded, -2 longer than every bound. `writer` spreads the
-- rows of concurrent writers on PostgreSQL; SQLite has one writer (0). Runners delete the
-- rows older than two hours.
CREATE TABLE finished_minutes (
    minute INTEGER NOT NULL,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    bound_ms INTEGER NOT NULL,
    writer INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    PRIMARY KEY (minute, queue, state, bound_ms, writer)
) WITHOUT ROWID;

-- Every attempt that ends (completed, failed to retry, dead) counts once, in its minute.
CREATE TRIGGER finished_minutes_note AFTER UPDATE OF state, finished_at ON jobs
WHEN new.finished_at IS NOT NULL AND new.state IN ('completed', 'failed', 'dead')
    AND (old.state IS NOT new.state OR old.finished_at IS NOT new.finished_at)
BEGIN
    INSERT INTO finished_minutes (minute, queue, state, bound_ms, writer, n, total_ms)
    VALUES (new.finished_at / 60000, new.queue, new.state,
            CASE WHEN new.duration_ms IS NULL THEN -1
                 WHEN new.duration_ms <= 10 THEN 10 WHEN new.duration_ms <= 50 THEN 50
                 WHEN new.duration_ms <= 100 THEN 100 WHEN new.duration_ms <= 500 THEN 500
                 WHEN new.duration_ms <= 1000 THEN 1000 WHEN new.duration_ms <= 5000 THEN 5000
                 WHEN new.duration_ms <= 10000 THEN 10000 WHEN new.duration_ms <= 30000 THEN 30000
                 WHEN new.duration_ms <= 60000 THEN 60000
                 WHEN new.duration_ms <= 300000 THEN 300000
                 WHEN new.duration_ms <= 1800000 THEN 1800000
                 WHEN new.duration_ms <= 3600000 THEN 3600000 ELSE -2 END,
            0, 1, COALESCE(new.duration_ms, 0))
    ON CONFLICT (minute, queue, state, bound_ms, writer) DO UPDATE
    SET n = n + 1, total_ms = total_ms + excluded.total_ms;
END;

-- The last two hours of what the store holds, as they were counted before.
INSERT INTO finished_minutes (minute, queue, state, bound_ms, writer, n, total_ms)
SELECT finished_at / 60000, queue, state,
       CASE WHEN duration_ms IS NULL THEN -1
            WHEN duration_ms <= 10 THEN 10 WHEN duration_ms <= 50 THEN 50
            WHEN duration_ms <= 100 THEN 100 WHEN duration_ms <= 500 THEN 500
            WHEN duration_ms <= 1000 THEN 1000 WHEN duration_ms <= 5000 THEN 5000
            WHEN duration_ms <= 10000 THEN 10000 WHEN duration_ms <= 30000 THEN 30000
            WHEN duration_ms <= 60000 THEN 60000 WHEN duration_ms <= 300000 THEN 300000
            WHEN duration_ms <= 1800000 THEN 1800000
            WHEN duration_ms <= 3600000 THEN 3600000 ELSE -2 END AS bound,
       0, COUNT(*), COALESCE(SUM(duration_ms), 0)
FROM jobs
WHERE finished_at >= (SELECT MAX(finished_at) FROM jobs) - 7200000
  AND state IN ('completed', 'failed', 'dead')
GROUP BY 1, 2, 3, 4;

-- The completions of the last minute (`status`' done_last_minute) and the finished jobs that
-- retention deletes are found by finished_at and state: both from the index alone, not one
-- row read per job (a busy minute is 100,000 of them).
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at, state) WHERE finished_at IS NOT NULL;
