-- Exact counts that cost the same however many jobs are stored: jobs and attempts per queue
-- and state, kept by triggers in the transaction of every change (SQLite has one writer, so
-- one row per queue and state contends with nothing). Indexes for every filter of `list`, and
-- for the oldest due job of each queue.
CREATE TABLE job_counts (
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    PRIMARY KEY (queue, state)
) WITHOUT ROWID;
INSERT INTO job_counts (queue, state, n, attempts)
SELECT queue, state, COUNT(*), SUM(attempts) FROM jobs GROUP BY queue, state;

CREATE TRIGGER job_counts_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_counts (queue, state, n, attempts)
    VALUES (new.queue, new.state, 1, new.attempts)
    ON CONFLICT (queue, state) DO UPDATE
    SET n = n + 1, attempts = attempts + excluded.attempts;
END;
CREATE TRIGGER job_counts_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_counts SET n = n - 1, attempts = attempts - old.attempts
    WHERE queue = old.queue AND state = old.state;
END;
CREATE TRIGGER job_counts_update AFTER UPDATE OF state, queue, attempts ON jobs
WHEN old.state IS NOT new.state OR old.queue IS NOT new.queue
    OR old.attempts IS NOT new.attempts
BEGIN
    UPDATE job_counts SET n = n - 1, attempts = attempts - old.attempts
    WHERE queue = old.queue AND state = old.state;
    INSERT INTO job_counts (queue, state, n, attempts)
    VALUES (new.queue, new.state, 1, new.attempts)
    ON CONFLICT (queue, state) DO UPDATE
    SET n = n + 1, attempts = attempts + excluded.attempts;
END;

CREATE INDEX jobs_by_queue ON jobs (queue, seq);
CREATE INDEX jobs_by_queue_state ON jobs (queue, state, seq);
-- Per queue, the jobs that may start once due, by run_at: the oldest due is the first entry.
CREATE INDEX jobs_ready ON jobs (queue, run_at) WHERE state IN ('pending', 'failed') AND waiting_on = 0;
