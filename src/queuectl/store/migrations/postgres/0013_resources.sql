-- Changes claims: a runner claims a job with limits only if it enforces every one of them.
-- A job's limits (memory in bytes, cpus, max_procs; NULL: none) and its queue's defaults,
-- which the job's own values override. A runner says which limits it enforces (`enforces`, a
-- list of their names; NULL: none); what each attempt cost is in its history entry.
ALTER TABLE jobs ADD COLUMN memory BIGINT;
ALTER TABLE jobs ADD COLUMN cpus DOUBLE PRECISION;
ALTER TABLE jobs ADD COLUMN max_procs INTEGER;
ALTER TABLE queues ADD COLUMN memory BIGINT;
ALTER TABLE queues ADD COLUMN cpus DOUBLE PRECISION;
ALTER TABLE queues ADD COLUMN max_procs INTEGER;
ALTER TABLE runners ADD COLUMN enforces JSONB;
ALTER TABLE attempts ADD COLUMN cpu_ms BIGINT;
ALTER TABLE attempts ADD COLUMN max_rss_bytes BIGINT;

-- What the attempts that ended cost, per minute, queue and peak-memory bucket (the smallest
-- bound in bytes of PEAK_BOUNDS_BYTES that holds the attempt's peak, -1 for none recorded,
-- -2 above every bound): `n` attempts, their CPU time and the sum of their peaks. Minute -1
-- holds the totals since the store began, which only `reset --all` deletes (the counters of
-- /metrics); the rows of a minute are deleted once a week old (`status --since`). `writer`
-- spreads concurrent writers' rows, so that two runners settling at once do not wait on one
-- row.
CREATE TABLE usage_minutes (
    minute BIGINT NOT NULL,
    queue TEXT NOT NULL,
    bound_bytes BIGINT NOT NULL,
    writer INTEGER NOT NULL,
    n BIGINT NOT NULL,
    cpu_ms BIGINT NOT NULL,
    peak_bytes NUMERIC NOT NULL,
    PRIMARY KEY (minute, queue, bound_bytes, writer)
);

-- The bucket of a peak (see usage.PEAK_BOUNDS_BYTES).
CREATE FUNCTION queuectl_peak_bound(peak BIGINT) RETURNS BIGINT
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN peak IS NULL THEN -1
                WHEN peak <= 1048576 THEN 1048576
                WHEN peak <= 4194304 THEN 4194304
                WHEN peak <= 16777216 THEN 16777216
                WHEN peak <= 67108864 THEN 67108864
                WHEN peak <= 268435456 THEN 268435456
                WHEN peak <= 1073741824 THEN 1073741824
                WHEN peak <= 4294967296 THEN 4294967296
                WHEN peak <= 17179869184 THEN 17179869184
                WHEN peak <= 68719476736 THEN 68719476736 ELSE -2 END
$$;

-- Every attempt that ends with its cost counted adds it to its minute and to the totals: a
-- row trigger (a statement's would copy every updated row, output included, to count none),
-- which only a history write that names cpu_ms wakes, and only for an attempt that ended.
CREATE FUNCTION queuectl_note_usage() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_minutes AS u (minute, queue, bound_bytes, writer, n, cpu_ms, peak_bytes)
    SELECT minutes.minute, jobs.queue, queuectl_peak_bound(NEW.max_rss_bytes),
           pg_backend_pid(), 1, NEW.cpu_ms, COALESCE(NEW.max_rss_bytes, 0)
    FROM jobs, (VALUES (NEW.finished_at / 60000), (-1)) AS minutes (minute)
    WHERE jobs.id = NEW.job_id
    ON CONFLICT (minute, queue, bound_bytes, writer) DO UPDATE
    SET n = u.n + 1, cpu_ms = u.cpu_ms + excluded.cpu_ms,
        peak_bytes = u.peak_bytes + excluded.peak_bytes;
    RETURN NULL;
END;
$$;
CREATE TRIGGER attempts_usage AFTER UPDATE OF cpu_ms ON attempts FOR EACH ROW
WHEN (NEW.cpu_ms IS NOT NULL AND OLD.cpu_ms IS NULL AND NEW.finished_at IS NOT NULL)
EXECUTE FUNCTION queuectl_note_usage();
