-- The first schema: the same tables as SQLite's, in PostgreSQL types.
-- Instants are epoch milliseconds (BIGINT), as in SQLite, taken from the database's clock
-- (see PostgresStore), so hosts with skewed clocks agree and both dialects share one model.
CREATE TABLE jobs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- creation order
    id TEXT NOT NULL UNIQUE,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL,
    timeout DOUBLE PRECISION,
    run_at BIGINT NOT NULL,
    depends_on JSONB NOT NULL DEFAULT '[]',
    waiting_on INTEGER NOT NULL DEFAULT 0,   -- dependencies not yet completed
    no_retry_exit_codes JSONB NOT NULL DEFAULT '[]',
    unique_key TEXT,
    cwd TEXT NOT NULL,
    env JSONB NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    exit_code INTEGER,
    last_error TEXT,
    duration_ms BIGINT,
    lease_owner TEXT,
    lease_expires_at BIGINT
);
-- The claim order; blocked and finished jobs are not in it, so they cost a claim nothing.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0;
-- The next instant a job becomes due, for a runner deciding how long to sleep.
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'failed') AND waiting_on = 0;
CREATE INDEX jobs_leases ON jobs (lease_owner, lease_expires_at) WHERE state = 'processing';
CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
-- The arbiter of `ON CONFLICT` in enqueue: one active job per unique_key.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed');

CREATE TABLE job_deps (
    dep_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (dep_id, job_id)
);
CREATE INDEX job_deps_job ON job_deps (job_id);

CREATE TABLE job_output (
    job_id TEXT PRIMARY KEY,
    data BYTEA NOT NULL
);

CREATE TABLE config (
    key TEXT PRIMARY KEY,
    value JSONB NOT NULL
);

CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE runners (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT,              -- the process's start time, so a reused pid is not taken for it
    workers INTEGER NOT NULL,
    queues JSONB,                  -- list of names, NULL = every queue
    started_at BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    stop_requested BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    cron TEXT,
    every_s DOUBLE PRECISION,
    tz TEXT,
    job JSONB NOT NULL,            -- the job to enqueue, as validated JSON
    created_at BIGINT NOT NULL,
    last_at BIGINT,
    next_at BIGINT NOT NULL
);

-- A job's output and dependency edges go with it when it is purged (a trigger, not foreign
-- keys, so output saved for a job deleted meanwhile is dropped quietly, as on SQLite).
CREATE FUNCTION queuectl_jobs_purged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM job_output WHERE job_id = old.id;
    DELETE FROM job_deps WHERE job_id = old.id OR dep_id = old.id;
    RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_purged AFTER DELETE ON jobs
    FOR EACH ROW EXECUTE FUNCTION queuectl_jobs_purged();
