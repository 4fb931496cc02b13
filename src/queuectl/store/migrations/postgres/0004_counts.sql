-- Exact counts that cost the same however many jobs are stored: jobs and attempts per queue
-- and state. Statement triggers append one delta row per queue and state that a statement
-- changed (insert-only: concurrent claims never wait on a shared counter row); reads add the
-- deltas to a base that `compact_counts` folds them into now and then. Indexes for every
-- filter of `list`, and for the oldest due job of each queue.
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;  -- no change slips between the seed and the triggers
CREATE TABLE job_counts (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    PRIMARY KEY (queue, state)
);
CREATE TABLE job_count_deltas (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL,
    attempts BIGINT NOT NULL
);
INSERT INTO job_counts (queue, state, n, attempts)
SELECT queue, state, COUNT(*), SUM(attempts) FROM jobs GROUP BY queue, state;

CREATE FUNCTION queuectl_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_count_deltas (queue, state, n, attempts)
    SELECT queue, state, COUNT(*), SUM(attempts) FROM new_rows GROUP BY queue, state;
    RETURN NULL;
END;
$$;
CREATE FUNCTION queuectl_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_count_deltas (queue, state, n, attempts)
    SELECT queue, state, -COUNT(*), -SUM(attempts) FROM old_rows GROUP BY queue, state;
    RETURN NULL;
END;
$$;
-- Updates that change no count (lease renewals, output, promotions) append nothing.
CREATE FUNCTION queuectl_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_count_deltas (queue, state, n, attempts)
    SELECT queue, state, SUM(n), SUM(attempts) FROM (
        SELECT queue, state, 1 AS n, attempts FROM new_rows
        UNION ALL
        SELECT queue, state, -1, -attempts FROM old_rows
    ) AS changed
    GROUP BY queue, state
    HAVING SUM(n) <> 0 OR SUM(attempts) <> 0;
    RETURN NULL;
END;
$$;
CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_inserted();
CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_deleted();
CREATE TRIGGER job_counts_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_updated();

CREATE INDEX jobs_by_queue ON jobs (queue, seq);
CREATE INDEX jobs_by_queue_state ON jobs (queue, state, seq);
-- Per queue, the jobs that may start once due, by run_at: the oldest due is the first entry.
CREATE INDEX jobs_ready ON jobs (queue, run_at)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0;
