-- Changes claims: a claim keeps to batches' concurrency limits.
-- Batches: jobs grouped under a name (`--batch`, an array), made on first use, with exact
-- counts per state kept in the transaction of every change, so that reading a batch's
-- progress or waiting for it costs the same however many jobs it has.
LOCK TABLE jobs IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE jobs ADD COLUMN batch TEXT;
-- Whether the job's batch has a concurrency limit: such jobs are claimed through flow control,
-- and only they (a job of no limited batch never takes that path for it).
ALTER TABLE jobs ADD COLUMN batch_limited BOOLEAN NOT NULL DEFAULT false;
-- A dependency's condition: what its job must end in for the dependant to run (completed,
-- finished, failed).
ALTER TABLE job_deps ADD COLUMN cond TEXT NOT NULL DEFAULT 'completed';

-- A batch: its concurrency limit (NULL: none), its first start and last end, and when it last
-- became finished (NULL while any of its jobs may still run). Every change to a batch's jobs
-- locks its row (the triggers below), so the changes of one batch are counted one after the
-- other and the one that finishes it sees every other.
CREATE TABLE batches (
    name TEXT PRIMARY KEY,
    concurrency INTEGER,
    created_at BIGINT NOT NULL,
    started_at BIGINT,
    ended_at BIGINT,
    finished_at BIGINT
);
-- Jobs per batch and state. Inserts are counted by the store once per enqueued batch of rows;
-- updates and deletes by the statement triggers below.
CREATE TABLE batch_counts (
    batch TEXT NOT NULL,
    state TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (batch, state)
);
-- Jobs that wait for a whole batch to complete (`--after-batch`).
CREATE TABLE batch_deps (
    batch TEXT NOT NULL,
    job_id TEXT NOT NULL,
    PRIMARY KEY (batch, job_id)
);

CREATE INDEX jobs_by_batch ON jobs (batch, state, seq) WHERE batch IS NOT NULL;
-- The jobs of limited batches that may start, per batch in claim order: the claim's probe of
-- whether any exists is one look at an index that is empty without limited batches.
CREATE INDEX jobs_batch_waiting ON jobs (batch, priority DESC, run_at, seq)
    WHERE batch_limited AND state IN ('pending', 'failed') AND waiting_on = 0;

-- A statement that changes no job of a batch returns at the first check.
CREATE FUNCTION queuectl_count_batches_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM new_rows WHERE batch IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    PERFORM 1 FROM batches
    WHERE name IN (SELECT batch FROM new_rows WHERE batch IS NOT NULL)
    ORDER BY name FOR UPDATE;
    INSERT INTO batch_counts AS c (batch, state, n)
    SELECT batch, state, SUM(n) FROM (
        SELECT batch, state, 1 AS n FROM new_rows WHERE batch IS NOT NULL
        UNION ALL
        SELECT batch, state, -1 FROM old_rows WHERE batch IS NOT NULL
    ) AS changed
    GROUP BY batch, state
    HAVING SUM(n) <> 0
    ORDER BY batch, state
    ON CONFLICT (batch, state) DO UPDATE SET n = c.n + excluded.n;
    UPDATE batches SET
        started_at = LEAST(batches.started_at, seen.first_start),
        ended_at = GREATEST(batches.ended_at, seen.last_end),
        finished_at = CASE WHEN seen.open THEN NULL ELSE batches.finished_at END
    FROM (
        SELECT batch,
               MIN(started_at) FILTER (WHERE state = 'processing') AS first_start,
               MAX(finished_at) FILTER (WHERE state IN ('completed', 'dead', 'cancelled'))
                   AS last_end,
               bool_or(state NOT IN ('completed', 'dead', 'cancelled')) AS open
        FROM new_rows WHERE batch IS NOT NULL GROUP BY batch
    ) AS seen
    WHERE batches.name = seen.batch;
    RETURN NULL;
END;
$$;
CREATE FUNCTION queuectl_count_batches_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM old_rows WHERE batch IS NOT NULL) THEN
        RETURN NULL;
    END IF;
    INSERT INTO batch_counts AS c (batch, state, n)
    SELECT batch, state, -COUNT(*) FROM old_rows WHERE batch IS NOT NULL
    GROUP BY batch, state ORDER BY batch, state
    ON CONFLICT (batch, state) DO UPDATE SET n = c.n + excluded.n;
    DELETE FROM batch_deps WHERE job_id IN (SELECT id FROM old_rows WHERE batch IS NOT NULL);
    RETURN NULL;
END;
$$;
CREATE TRIGGER batch_counts_update AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_batches_updated();
CREATE TRIGGER batch_counts_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_count_batches_deleted();
