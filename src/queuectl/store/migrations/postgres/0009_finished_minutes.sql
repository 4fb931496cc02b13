-- What finished in each recent minute, kept as it happens, so that the dashboard's chart and
-- /metrics' duration histogram read a few rows however many jobs finished lately (they read
-- every job of the last hour). A row per minute, queue, state, duration bucket (the smallest
-- bound in ms that holds the attempt's duration, as DURATION_BOUNDS_MS in store/__init__.py;
-- -1 for none recorded, -2 longer than every bound) and writer: the backend that wrote it, so
-- that concurrent runners each add to rows of their own and never wait on a shared one.
-- Runners delete the rows older than two hours.
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;  -- no change slips between the seed and the trigger
CREATE TABLE finished_minutes (
    minute BIGINT NOT NULL,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    bound_ms BIGINT NOT NULL,
    writer INTEGER NOT NULL,
    n BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    PRIMARY KEY (minute, queue, state, bound_ms, writer)
);

CREATE FUNCTION queuectl_duration_bound(duration_ms BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN duration_ms IS NULL THEN -1
                WHEN duration_ms <= 10 THEN 10 WHEN duration_ms <= 50 THEN 50
                WHEN duration_ms <= 100 THEN 100 WHEN duration_ms <= 500 THEN 500
                WHEN duration_ms <= 1000 THEN 1000 WHEN duration_ms <= 5000 THEN 5000
                WHEN duration_ms <= 10000 THEN 10000 WHEN duration_ms <= 30000 THEN 30000
                WHEN duration_ms <= 60000 THEN 60000 WHEN duration_ms <= 300000 THEN 300000
                WHEN duration_ms <= 1800000 THEN 1800000
                WHEN duration_ms <= 3600000 THEN 3600000 ELSE -2 END
$$;

-- Every attempt that ends (completed, failed to retry, dead) counts once, in its minute.
CREATE FUNCTION queuectl_note_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO finished_minutes AS m (minute, queue, state, bound_ms, writer, n, total_ms)
    SELECT new_row.finished_at / 60000, new_row.queue, new_row.state,
           queuectl_duration_bound(new_row.duration_ms), pg_backend_pid(),
           COUNT(*), COALESCE(SUM(new_row.duration_ms), 0)
    FROM new_rows AS new_row JOIN old_rows AS old_row ON old_row.seq = new_row.seq
    WHERE new_row.finished_at IS NOT NULL
      AND new_row.state IN ('completed', 'failed', 'dead')
      AND (old_row.state IS DISTINCT FROM new_row.state
           OR old_row.finished_at IS DISTINCT FROM new_row.finished_at)
    GROUP BY 1, 2, 3, 4
    ON CONFLICT (minute, queue, state, bound_ms, writer) DO UPDATE
    SET n = m.n + excluded.n, total_ms = m.total_ms + excluded.total_ms;
    RETURN NULL;
END;
$$;
CREATE TRIGGER finished_minutes_note AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_note_finished();


-- The last two hours of what the store holds, as they were counted before.
INSERT INTO finished_minutes (minute, queue, state, bound_ms, writer, n, total_ms)
SELECT finished_at / 60000, queue, state, queuectl_duration_bound(duration_ms), 0,
       COUNT(*), COALESCE(SUM(duration_ms), 0)
FROM jobs
WHERE finished_at >= (SELECT MAX(finished_at) FROM jobs) - 7200000
  AND state IN ('completed', 'failed', 'dead')
GROUP BY 1, 2, 3, 4;

-- The completions of the last minute (`status`' done_last_minute) and the finished jobs that
-- retention deletes are found by finished_at and state: both from the index alone, not one
-- row read per job (a busy minute is 100,000 of them).
DROP INDEX jobs_finished;
CREATE INDEX jobs_finished ON jobs (finished_at, state) WHERE finished_at IS NOT NULL;
