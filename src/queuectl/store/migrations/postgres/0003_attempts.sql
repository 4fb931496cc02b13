-- Changes claims: a settlement writes the attempt's history, no longer `job_output`.
-- Every attempt is remembered with its own output: `attempts` replaces `job_output`.
-- `seq` orders a job's attempts across requeues (which start its attempt numbers again at 1).
CREATE TABLE attempts (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    runner TEXT,
    host TEXT,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,              -- NULL while it runs
    exit_code INTEGER,
    error TEXT,
    duration_ms BIGINT,
    output BYTEA,                    -- the last output_limit bytes
    output_dropped BIGINT NOT NULL DEFAULT 0   -- bytes written before those
);
CREATE INDEX attempts_job ON attempts (job_id, seq);

-- Each existing job's last attempt becomes its history's only entry.
INSERT INTO attempts (job_id, attempt, runner, host, started_at, finished_at, exit_code, error,
                      duration_ms, output)
SELECT jobs.id, jobs.attempts, jobs.lease_owner,
       (SELECT host FROM runners WHERE runners.id = jobs.lease_owner),
       jobs.started_at, CASE WHEN jobs.state = 'processing' THEN NULL ELSE jobs.finished_at END,
       jobs.exit_code, jobs.last_error, jobs.duration_ms, job_output.data
FROM jobs LEFT JOIN job_output ON job_output.job_id = jobs.id
WHERE jobs.attempts > 0 AND jobs.started_at IS NOT NULL
ORDER BY jobs.seq;

DROP TABLE job_output;
-- A job's history and dependency edges go with it, so a new job with its id starts afresh.
CREATE OR REPLACE FUNCTION queuectl_jobs_purged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM attempts WHERE job_id = old.id;
    DELETE FROM job_deps WHERE job_id = old.id OR dep_id = old.id;
    RETURN NULL;
END;
$$;
