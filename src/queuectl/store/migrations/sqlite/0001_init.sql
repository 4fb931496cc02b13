-- The first schema: jobs, their dependencies and output, config, queues, runners, schedules.
-- Instants are epoch milliseconds (integers, indexed).
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- creation order
    id TEXT NOT NULL UNIQUE,
    command TEXT NOT NULL,
    state TEXT NOT NULL,
    queue TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL,
    timeout REAL,
    run_at INTEGER NOT NULL,
    depends_on TEXT NOT NULL DEFAULT '[]',
    waiting_on INTEGER NOT NULL DEFAULT 0,   -- dependencies not yet completed
    no_retry_exit_codes TEXT NOT NULL DEFAULT '[]',
    unique_key TEXT,
    cwd TEXT NOT NULL,
    env TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    exit_code INTEGER,
    last_error TEXT,
    duration_ms INTEGER,
    lease_owner TEXT,
    lease_expires_at INTEGER
);
-- The claim order; blocked and finished jobs are not in it, so they cost a claim nothing.
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0;
-- The next instant a job becomes due, for a runner deciding how long to sleep.
CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('pending', 'failed') AND waiting_on = 0;
CREATE INDEX jobs_leases ON jobs (lease_owner, lease_expires_at) WHERE state = 'processing';
CREATE INDEX jobs_by_state ON jobs (state, seq);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed');

CREATE TABLE job_deps (
    dep_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (dep_id, job_id)
) WITHOUT ROWID;

CREATE TABLE job_output (
    job_id TEXT PRIMARY KEY,
    data BLOB NOT NULL
);

CREATE TABLE config (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE queues (
    name TEXT PRIMARY KEY,
    paused INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE runners (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT,              -- the process's start time, so a reused pid is not taken for it
    workers INTEGER NOT NULL,
    queues TEXT,                   -- JSON list, NULL = every queue
    started_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    stop_requested INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    cron TEXT,
    every_s REAL,
    tz TEXT,
    job TEXT NOT NULL,             -- the job to enqueue, as validated JSON
    created_at INTEGER NOT NULL,
    last_at INTEGER,
    next_at INTEGER NOT NULL
);

-- A job's output and dependency edges go with it when it is purged.
CREATE TRIGGER jobs_purged AFTER DELETE ON jobs BEGIN
    DELETE FROM job_output WHERE job_id = old.id;
    DELETE FROM job_deps WHERE job_id = old.id OR dep_id = old.id;
END;
