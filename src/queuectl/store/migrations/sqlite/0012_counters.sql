-- Counters that only go up, for Prometheus' rate(): jobs enqueued, jobs that reached a final
-- state, and attempts that ended, by how they ended, with their durations in the buckets of
-- finished_minutes (0009). Kept in the transaction of each change; retention, purge and
-- `reset` of jobs delete no row of them, only `reset --all` does. A row per queue and kind
-- of event, `what`:
--   'enqueued'  jobs enqueued (outcome ''; state: pending, or cancelled when a dependency
--               had failed already)
--   'attempt'   attempts that ended: outcome (completed, failed, timed_out, lost,
--               cancelled), the state it left the job in, bound_ms the duration's bucket,
--               total_ms the durations' sum
--   'finished'  jobs that reached a final state without an attempt ending (cancelled while
--               waiting; outcome '')
-- so that one row counts each event: the jobs finished are the rows whose state is final.
-- `state` is '' for the attempts counted from the history when the counters began.
-- Enqueues are counted by the store once per batch, as job_counts' are (0007).
CREATE TABLE counters (
    queue TEXT NOT NULL,
    what TEXT NOT NULL,
    outcome TEXT NOT NULL,
    state TEXT NOT NULL,
    bound_ms INTEGER NOT NULL,
    n INTEGER NOT NULL,
    total_ms INTEGER NOT NULL,
    PRIMARY KEY (queue, what, outcome, state, bound_ms)
) WITHOUT ROWID;

-- One trigger notes every end, as finished_minutes_note (0009) did alone: a trigger costs
-- each row an UPDATE changes, even where its WHEN is false, so one serves both tables. A job
-- that leaves `processing` other than given back by a stopping runner (pending again) ends
-- an attempt; a settlement and a cancel write last_error as the attempt's history does: its
-- words say how the attempt ended.
DROP TRIGGER finished_minutes_note;
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
END;

-- What the store holds already, as if counted as it happened: its jobs enqueued, those
-- finished, and the attempts of their history that ended.
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
SELECT queue, 'enqueued', '', 'pending', 0, COUNT(*), 0 FROM jobs GROUP BY queue;
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
SELECT queue, 'finished', '', state, 0, COUNT(*), 0 FROM jobs
WHERE state IN ('completed', 'dead', 'cancelled')
GROUP BY queue, state;
INSERT INTO counters (queue, what, outcome, state, bound_ms, n, total_ms)
SELECT jobs.queue, 'attempt',
       CASE WHEN attempts.error IS NULL THEN 'completed'
            WHEN attempts.error = 'cancelled' THEN 'cancelled'
            WHEN attempts.error = 'worker lost' THEN 'lost'
            WHEN attempts.error LIKE 'timed out%' THEN 'timed_out'
            ELSE 'failed' END,
       '',
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
GROUP BY 1, 2, 3, 4, 5;
