-- Changes claims: a claim clears the job's cpu_ms and max_rss_bytes, and a settlement writes
-- what its attempt cost there too, where the trigger on the jobs counts it.
-- One trigger for every statement that updates jobs, where three ran (the counts of 0004, the
-- finished minutes and counters of 0012, the batches' counts of 0014): a statement trigger is
-- called for every UPDATE, even one that changes no row (a claim's promotion of due jobs, a
-- settlement's update of dependants when there are none), and each call costs the server a
-- function's start and a plan run per query over the transition tables. One pass over the
-- new rows now says what there is to do: nothing for a statement that changed no row, the
-- counts alone for a claim (no attempt ended, no job finished), the batches' only for jobs
-- of a batch.
--
-- What each attempt cost was counted by a row trigger of its own on the history (0013), which
-- every settlement woke: a function call and a second read of the job per attempt. The
-- settlement of the job now carries the attempt's CPU time and peak, and the trigger on the
-- jobs adds them to usage_minutes with the rest. The job keeps its last settled attempt's
-- figures (its history keeps each one's).
ALTER TABLE jobs ADD COLUMN cpu_ms BIGINT;
ALTER TABLE jobs ADD COLUMN max_rss_bytes BIGINT;
DROP TRIGGER attempts_usage ON attempts;
DROP FUNCTION queuectl_note_usage();

CREATE FUNCTION queuectl_jobs_updated() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    changed_any BOOLEAN;
    in_batch BOOLEAN;
    ended BOOLEAN;
BEGIN
    -- What the statement changed, in one pass over its rows: whether any, of a batch, and
    -- whether any left the states that neither end an attempt nor finish a job.
    SELECT COUNT(*) > 0, COALESCE(bool_or(batch IS NOT NULL), false),
           COALESCE(bool_or(state NOT IN ('pending', 'processing')), false)
    INTO changed_any, in_batch, ended
    FROM new_rows;
    IF NOT changed_any THEN
        RETURN NULL;
    END IF;
    -- The batches first, as when their trigger fired first (by name): their rows are locked
    -- in name order before anything else, so that their claimers and settlers take turns.
    IF in_batch THEN
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
    END IF;
    -- Then the counts (updates that change none append nothing), the finished minutes and
    -- the counters, from one join of the statement's old and new rows.
    INSERT INTO job_count_deltas (queue, state, n, attempts)
    SELECT queue, state, SUM(n), SUM(attempts) FROM (
        SELECT queue, state, 1 AS n, attempts FROM new_rows
        UNION ALL
        SELECT queue, state, -1, -attempts FROM old_rows
    ) AS changed
    GROUP BY queue, state
    HAVING SUM(n) <> 0 OR SUM(attempts) <> 0;
    IF NOT ended THEN
        RETURN NULL;  -- a claim, a requeue, a promotion: nothing ended, nothing finished
    END IF;
    WITH changed AS (
        SELECT new_row.queue, new_row.state, new_row.finished_at, new_row.duration_ms,
               new_row.last_error, old_row.state AS was, new_row.cpu_ms,
               new_row.max_rss_bytes
        FROM new_rows AS new_row JOIN old_rows AS old_row ON old_row.seq = new_row.seq
        WHERE old_row.state IS DISTINCT FROM new_row.state
           OR old_row.finished_at IS DISTINCT FROM new_row.finished_at
    ),
    -- What the attempts that ended cost (0013), from what their settlements wrote on their
    -- jobs: only a settlement writes it, and a claim clears it, so an attempt reaped,
    -- cancelled or given back counts none, as its history entry has none.
    usage AS (
        INSERT INTO usage_minutes AS u (minute, queue, bound_bytes, writer, n, cpu_ms,
                                        peak_bytes)
        SELECT minutes.minute, queue, queuectl_peak_bound(max_rss_bytes), pg_backend_pid(),
               COUNT(*), SUM(cpu_ms), COALESCE(SUM(max_rss_bytes), 0)
        FROM changed, LATERAL (VALUES (finished_at / 60000), (-1)) AS minutes (minute)
        WHERE was = 'processing' AND cpu_ms IS NOT NULL AND finished_at IS NOT NULL
          AND state NOT IN ('pending', 'processing')
        GROUP BY 1, 2, 3
        ON CONFLICT (minute, queue, bound_bytes, writer) DO UPDATE
        SET n = u.n + excluded.n, cpu_ms = u.cpu_ms + excluded.cpu_ms,
            peak_bytes = u.peak_bytes + excluded.peak_bytes
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
DROP TRIGGER batch_counts_update ON jobs;
DROP TRIGGER finished_minutes_note ON jobs;
DROP TRIGGER job_counts_update ON jobs;
CREATE TRIGGER jobs_updated AFTER UPDATE ON jobs
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION queuectl_jobs_updated();
DROP FUNCTION queuectl_count_batches_updated();
DROP FUNCTION queuectl_note_finished();
DROP FUNCTION queuectl_count_updated();
