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
-- As job_counts (0004): the triggers append deltas (insert-only: concurrent claims and
-- settlements never wait on a shared counter row), reads add them to the base, and the
-- compaction of job_counts folds them in too (they pile up no faster than job_counts' own).
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;  -- no change slips between the seed and the triggers
CREATE TABLE counters (
    queue TEXT NOT NULL,
    what TEXT NOT NULL,
    outcome TEXT NOT NULL,
    state TEXT NOT NULL,
    bound_ms BIGINT NOT NULL,
    n BIGINT NOT NULL,
    total_ms BIGINT NOT NULL,
    PRIMARY KEY (queue, what, outcome, state, bound_ms)
);
CREATE TABLE counter_deltas (
    queue TEXT NOT NULL,
    what TEXT NOT NULL,
    outcome TEXT NOT NULL,
    state TEXT NOT NULL,
    bound_ms BIGINT NOT NULL,
    n BIGINT NOT NULL,
    total_ms BIGINT NOT NULL
);

-- How an attempt ended, from the state its job reached and the error a settlement or a
-- cancel wrote (the attempt's history holds the same words).
CREATE FUNCTION queuectl_attempt_outcome(state TEXT, error TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN state = 'completed' THEN 'completed'
                WHEN state = 'cancelled' THEN 'cancelled'
                WHEN error = 'worker lost' THEN 'lost'
                WHEN error LIKE 'timed out%' THEN 'timed_out'
                ELSE 'failed' END
$$;

-- Every statement that inserts jobs: what job_counts counts (0004), and the jobs enqueued.
CREATE OR REPLACE FUNCTION queuectl_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_count_deltas (queue, state, n, attempts)
    SELECT queue, state, COUNT(*), SUM(attempts) FROM new_rows GROUP BY queue, state;
    INSERT INTO counter_deltas (queue, what, outcome, state, bound_ms, n, total_ms)
    SELECT queue, 'enqueued', '', state, 0, COUNT(*), 0 FROM new_rows GROUP BY queue, state;
    RETURN NULL;
END;
$$;

-- Every statement that updates jobs: what finished_minutes keeps (0009), from the same rows
-- (one trigger, one join of the statement's old and new rows), and the counters: a job that
-- leaves `processing` other than given back by a stopping runner (pending again) ends an
-- attempt; one that reaches a final state otherwise finishes without one.
CREATE OR REPLACE FUNCTION queuectl_note_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    WITH changed AS (
        SELECT new_row.queue, new_row.state, new_row.finished_at, new_row.duration_ms,
               new_row.last_error, old_row.state AS was
        FROM new_rows AS new_row JOIN old_rows AS old_row ON old_row.seq = new_row.seq
        WHERE old_row.state IS DISTINCT FROM new_row.state
           OR old_row.finished_at IS DISTINCT FROM new_row.finished_at
    ),
    minutes AS (
        INSERT INTO finished_minutes AS m (minute, queue, state, bound_ms, writer, n, total_ms)
        SELECT finished_at / 60000, queue, state, queuectl_duration_bound(duration_ms),
               pg_backend_pid(), COUNT(*), COALESCE(SUM(duration_ms), 0)
        FROM changed
        WHERE finished_at IS NOT NULL AND state IN ('completed', 'failed', 'dead')
        GROUP BY 1, 2, 3, 4
        ON CONFLICT (minute, queue, state, bound_ms, writer) DO UPDATE
        SET n = m.n + excluded.n, total_ms = m.total_ms + excluded.total_ms
    )
    INSERT INTO counter_deltas (queue, what, outcome, state, bound_ms, n, total_ms)
    SELECT queue, CASE WHEN was = 'processing' THEN 'attempt' ELSE 'finished' END,
           CASE WHEN was = 'processing' THEN queuectl_attempt_outcome(state, last_error)
                ELSE '' END,
           state,
           CASE WHEN was = 'processing' THEN queuectl_duration_bound(duration_ms) ELSE 0 END,
           COUNT(*), COALESCE(SUM(duration_ms) FILTER (WHERE was = 'processing'), 0)
    FROM changed
    WHERE state IS DISTINCT FROM was AND state NOT IN ('pending', 'processing')
      AND (was = 'processing' OR state IN ('completed', 'dead', 'cancelled'))
    GROUP BY 1, 2, 3, 4, 5;
    RETURN NULL;
END;
$$;

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
       queuectl_attempt_outcome(CASE WHEN attempts.error IS NULL THEN 'completed'
                                     WHEN attempts.error = 'cancelled' THEN 'cancelled'
                                     ELSE 'failed' END, attempts.error),
       '', queuectl_duration_bound(attempts.duration_ms),
       COUNT(*), COALESCE(SUM(attempts.duration_ms), 0)
FROM attempts JOIN jobs ON jobs.id = attempts.job_id
WHERE attempts.finished_at IS NOT NULL
GROUP BY 1, 2, 3, 4, 5;
