-- Changes claims: a claim clears the job's cpu_ms and max_rss_bytes, and a settlement writes
-- what its attempt cost there too, where the trigger that keeps the minutes of finished jobs
-- counts it.
-- What each attempt cost was counted by a trigger of its own on the history (0013), which
-- every settlement woke: a second trigger program, and a second read of the job, per attempt.
-- The settlement of the job now carries the attempt's CPU time and peak, and the one trigger
-- that notes every end (0012) adds them to usage_minutes in the same step. The job keeps its
-- last settled attempt's figures (its history keeps each one's).
ALTER TABLE jobs ADD COLUMN cpu_ms INTEGER;
ALTER TABLE jobs ADD COLUMN max_rss_bytes INTEGER;
DROP TRIGGER attempts_usage;
DROP TRIGGER jobs_ended;
CREATE TRIGGER jobs_ended AFTER UPDATE OF state, finished_at ON jobs
WHEN (old.state IS NOT new.state OR old.finished_at IS NOT new.finished_at)
    AND new.state NOT IN ('pending', 'processing')
BEGIN
    INSERT INTO finished_minutes (minute, queue, state, bound_ms, writer, n, total_ms)
    SELECT new.finished_at / 60000, new.queue, new.state,
           CASE WHEN new.duration_ms IS NULL THEN -1
                WHEN new.duration_ms <= 10 THEN 10 WHEN new.duration_ms <= 50 THEN 50
                WHEN new.duration_ms <= 100 THEN 100 WHEN new.duration_ms <= 500 THEN 500
                WHEN new.duration_ms <= 1000 THEN 1000 WHEN new.duration_ms <= 5000 THEN 5000
                WHEN new.duration_ms <= 10000 THEN 10000
                WHEN new.duration_ms <= 30000 THEN 30000
                WHEN new.duration_ms <= 60000 THEN 60000
                WHEN new.duration_ms <= 300000 THEN 300000
                WHEN new.duration_ms <= 1800000 THEN 1800000
                WHEN new.duration_ms <= 3600000 THEN 3600000 ELSE -2 END,
           0, 1, COALESCE(new.duration_ms, 0)
    WHERE new.finished_at IS NOT NULL AND new.state IN ('completed', 'failed', 'dead')
    ON CONFLICT (minute, queue, state, bound_ms, writer) DO UPDATE
    SET n = n + 1, total_ms = total_ms + excluded.total_ms;
    INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
    SELECT new.queue,
           CASE WHEN old.state = 'processing' THEN 'attempt' ELSE 'finished' END,
           CASE WHEN old.state <> 'processing' THEN ''
                WHEN new.state = 'completed' THEN 'completed'
                WHEN new.state = 'cancelled' THEN 'cancelled'
                WHEN new.last_error = 'worker lost' THEN 'lost'
                WHEN new.last_error LIKE 'timed out%' THEN 'timed_out'
                ELSE 'failed' END,
           new.state,
           CASE WHEN old.state <> 'processing' THEN 0
                WHEN new.duration_ms IS NULL THEN -1
                WHEN new.duration_ms <= 10 THEN 10 WHEN new.duration_ms <= 50 THEN 50
                WHEN new.duration_ms <= 100 THEN 100 WHEN new.duration_ms <= 500 THEN 500
                WHEN new.duration_ms <= 1000 THEN 1000 WHEN new.duration_ms <= 5000 THEN 5000
                WHEN new.duration_ms <= 10000 THEN 10000
                WHEN new.duration_ms <= 30000 THEN 30000
                WHEN new.duration_ms <= 60000 THEN 60000
                WHEN new.duration_ms <= 300000 THEN 300000
                WHEN new.duration_ms <= 1800000 THEN 1800000
                WHEN new.duration_ms <= 3600000 THEN 3600000 ELSE -2 END,
           1,
           CASE WHEN old.state = 'processing' THEN COALESCE(new.duration_ms, 0) ELSE 0 END
    WHERE old.state IS NOT new.state
      AND (old.state = 'processing' OR new.state IN ('completed', 'dead', 'cancelled'))
    ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE
    SET n = n + 1, total_ms = total_ms + excluded.total_ms;
    -- What the attempt cost (0013), from what its settlement wrote on the job: only a
    -- settlement writes it, and a claim clears it, so an attempt reaped, cancelled or given
    -- back counts none, as its history entry has none.
    INSERT INTO usage_minutes (minute, queue, bound_bytes, writer, n, cpu_ms, peak_bytes)
    SELECT minutes.minute, new.queue,
           CASE WHEN new.max_rss_bytes IS NULL THEN -1
           WHEN new.max_rss_bytes <= 1048576 THEN 1048576
           WHEN new.max_rss_bytes <= 4194304 THEN 4194304
           WHEN new.max_rss_bytes <= 16777216 THEN 16777216
           WHEN new.max_rss_bytes <= 67108864 THEN 67108864
           WHEN new.max_rss_bytes <= 268435456 THEN 268435456
           WHEN new.max_rss_bytes <= 1073741824 THEN 1073741824
           WHEN new.max_rss_bytes <= 4294967296 THEN 4294967296
           WHEN new.max_rss_bytes <= 17179869184 THEN 17179869184
           WHEN new.max_rss_bytes <= 68719476736 THEN 68719476736 ELSE -2 END,
           0, 1, new.cpu_ms, COALESCE(new.max_rss_bytes, 0)
    FROM (SELECT new.finished_at / 60000 AS minute UNION ALL SELECT -1) AS minutes
    WHERE new.cpu_ms IS NOT NULL AND old.state = 'processing' AND new.finished_at IS NOT NULL
    ON CONFLICT (minute, queue, bound_bytes, writer) DO UPDATE
    SET n = n + 1, cpu_ms = cpu_ms + excluded.cpu_ms,
        peak_bytes = peak_bytes + excluded.peak_bytes;
END;
