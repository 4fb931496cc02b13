-- Counters that only go up, for Prometheus' rate(): jobs enqueued, jobs that reached a final
-- state, and attempts that ended, by how they ended, with their durations in the buckets of
-- finished_minutes (0009). Kept in the transaction of each change; retention, purge and
-- `reset` of jobs delete no row of them, only `reset --all` does. A row per queue and:
--   what 'enqueued'  label ''                      bound_ms 0
--   what 'finished'  label the state reached       bound_ms 0
--   what 'attempt'   label how it ended (completed, failed, timed_out, lost, cancelled)
--                    bound_ms its duration's bucket, total_ms the durations' sum
-- Enqueues are counted by the store once per batch, as job_counts' are (0007).
CREATE TABLE counters (
    queue TEXT NOT NULL,
    what TEXT NOT NULL,
    label TEXT NOT NULL,
    bound_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, what, label, bound_ms)
) WITHOUT ROWID;

-- A job that reaches a final state finishes; one that leaves `processing` other than given
-- back by a stopping runner (pending again) ends an attempt. A settlement and a cancel write
-- last_error as the attempt's history does: its words say how the attempt ended.
CREATE TRIGGER counters_note AFTER UPDATE OF state ON jobs
WHEN old.state IS NOT new.state
    AND (new.state IN ('completed', 'dead', 'cancelled')
         OR old.state = 'processing' AND new.state <> 'pending')
BEGIN
    INSERT INTO counters (queue, what, label, bound_ms, n, total_ms)
    SELECT new.queue, 'finished', new.state, 0, 1, 0
    WHERE new.state IN ('completed', 'dead', 'cancelled')
    UNION ALL
    SELECT new.queue, 'attempt',
           CASE WHEN new.state = 'completed' THEN 'completed'
                WHEN new.state = 'cancelled' THEN 'cancelled'
                WHEN new.last_error = 'worker lost' THEN 'lost'
                WHEN new.last_error LIKE 'timed out%' THEN 'timed_out'
                ELSE 'failed' END,
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
           1, COALESCE(new.duration_ms, 0)
    WHERE old.state = 'processing' AND new.state <> 'pending'
    ON CONFLICT (queue, what, label, bound_ms) DO UPDATE
    SET n = n + excluded.n, total_ms = total_ms + excluded.total_ms;
END;

-- What the store holds already, as if counted as it happened: its jobs enqueued, those
-- finished, and the attempts of their history that ended.
INSERT INTO counters (queue, what, label, bound_ms, n, total_ms)
SELECT queue, 'enqueued', '', 0, COUNT(*), 0 FROM jobs GROUP BY queue;
INSERT INTO counters (queue, what, label, bound_ms, n, total_ms)
SELECT queue, 'finished', state, 0, COUNT(*), 0 FROM jobs
WHERE state IN ('completed', 'dead', 'cancelled')
GROUP BY queue, state;
INSERT INTO counters (queue, what, label, bound_ms, n, total_ms)
SELECT jobs.queue, 'attempt',
       CASE WHEN attempts.error IS NULL THEN 'completed'
            WHEN attempts.error = 'cancelled' THEN 'cancelled'
            WHEN attempts.error = 'worker lost' THEN 'lost'
            WHEN attempts.error LIKE 'timed out%' THEN 'timed_out'
            ELSE 'failed' END,
       CASE WHEN attempts.duration_ms IS NULL THEN -1
            WHEN attempts.duration_ms <= 10 THEN 10 WHEN attempts.duration_ms <= 50 THEN 50
            WHEN attempts.duration_ms <= 100 THEN 100 WHEN attempts.duration_ms <= 500 THEN 500
            WHEN attempts.duration_ms <= 1000 THEN 1000
            WHEN attempts.duration_ms <= 5000 THEN 5000
            WHEN attempts.duration_ms <= 10000 THEN 10000
            WHEN attempts.duration_ms <= 30000 THEN 30000
            WHEN attempts.duration_ms <= 60000 THEN 60000
            WHEN attempts.duration_ms <= 300000 THEN 300000
            WHEN attempts.duration_ms <= 1800000 THEN 1800000
            WHEN attempts.duration_ms <= 3600000 THEN 3600000 ELSE -2 END,
       COUNT(*), COALESCE(SUM(attempts.duration_ms), 0)
FROM attempts JOIN jobs ON jobs.id = attempts.job_id
WHERE attempts.finished_at IS NOT NULL
GROUP BY 1, 2, 3, 4;
