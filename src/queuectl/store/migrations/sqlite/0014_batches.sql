-- Changes claims: a claim keeps to batches' concurrency limits.
-- Batches: jobs grouped under a name (`--batch`, an array), made on first use, with exact
-- counts per state kept in the transaction of every change, so that reading a batch's
-- progress or waiting for it costs the same however many jobs it has.
ALTER TABLE jobs ADD COLUMN batch TEXT;
-- Whether the job's batch has a concurrency limit: such jobs are claimed through flow control,
-- and only they (a job of no limited batch never takes that path for it).
ALTER TABLE jobs ADD COLUMN batch_limited INTEGER NOT NULL DEFAULT 0;
-- A dependency's condition: what its job must end in for the dependant to run (completed,
-- finished, failed).
ALTER TABLE job_deps ADD COLUMN cond TEXT NOT NULL DEFAULT 'completed';

-- A batch: its concurrency limit (NULL: none), its first start and last end, and when it last
-- became finished (NULL while any of its jobs may still run).
CREATE TABLE batches (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    finished_at INTEGER
);
-- Jobs per batch and state. Inserts are counted by the store once per enqueued batch of rows
-- (as job_counts' are, 0007); updates and deletes by the triggers below.
CREATE TABLE batch_counts (
    batch TEXT NOT NULL,
    state TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (batch, state)
) WITHOUT ROWID;
-- Jobs that wait for a whole batch to complete (`--after-batch`).
CREATE TABLE batch_deps (
    batch TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (batch, job_id)
) WITHOUT ROWID;

CREATE INDEX jobs_by_batch ON jobs (batch, state, seq) WHERE batch IS NOT NULL;
-- The jobs of limited batches that may start, per batch in claim order: the claim's probe of
-- whether any exists is one look at an index that is empty without limited batches.
CREATE INDEX jobs_batch_waiting ON jobs (batch, priority DESC, run_at, seq)
    WHERE batch_limited = 1 AND state IN ('pending', 'failed') AND waiting_on = 0;

CREATE TRIGGER batch_counts_update AFTER UPDATE OF state ON jobs
WHEN new.batch IS NOT NULL AND old.state IS NOT new.state
BEGIN
    UPDATE batch_counts SET n = n - 1 WHERE batch = old.batch AND state = old.state;
    INSERT INTO batch_counts (batch, state, n) VALUES (new.batch, new.state, 1)
    ON CONFLICT (batch, state) DO UPDATE SET n = n + 1;
    UPDATE batches SET
        started_at = CASE WHEN new.state = 'processing' AND new.started_at IS NOT NULL
                          THEN MIN(COALESCE(started_at, new.started_at), new.started_at)
                          ELSE started_at END,
        ended_at = CASE WHEN new.state IN ('completed', 'dead', 'cancelled')
                        THEN MAX(COALESCE(ended_at, 0), COALESCE(new.finished_at, 0))
                        ELSE ended_at END,
        finished_at = CASE WHEN new.state IN ('completed', 'dead', 'cancelled')
                           THEN finished_at END
    WHERE name = new.batch;
END;
CREATE TRIGGER batch_counts_delete AFTER DELETE ON jobs WHEN old.batch IS NOT NULL
BEGIN
    UPDATE batch_counts SET n = n - 1 WHERE batch = old.batch AND state = old.state;
    DELETE FROM batch_deps WHERE job_id = old.id;
END;
