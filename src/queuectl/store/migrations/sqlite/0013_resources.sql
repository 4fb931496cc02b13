-- Changes claims: a runner claims a job with limits only if it enforces every one of them.
-- A job's limits (memory in bytes, cpus, max_procs; NULL: none) and its queue's defaults,
-- which the job's own values override. A runner says which limits it enforces (`enforces`, a
-- JSON list of their names; NULL: none); what each attempt cost is in its history entry.
ALTER TABLE jobs ADD COLUMN memory INTEGER;
ALTER TABLE jobs ADD COLUMN cpus REAL;
ALTER TABLE jobs ADD COLUMN max_procs INTEGER;
ALTER TABLE queues ADD COLUMN memory INTEGER;
ALTER TABLE queues ADD COLUMN cpus REAL;
ALTER TABLE queues ADD COLUMN max_procs INTEGER;
ALTER TABLE runners ADD COLUMN enforces TEXT;
ALTER TABLE attempts ADD COLUMN cpu_ms INTEGER;
ALTER TABLE attempts ADD COLUMN max_rss_bytes INTEGER;

-- What the attempts that ended cost, per minute, queue and peak-memory bucket (the smallest
-- bound in bytes of PEAK_BOUNDS_BYTES that holds the attempt's peak, -1 for none recorded,
-- -2 above every bound): `n` attempts, their CPU time and the sum of their peaks. Minute -1
-- holds the totals since the store began, which only `reset --all` deletes (the counters of
-- /metrics); the rows of a minute are deleted once a week old (`status --since`). `writer`
-- spreads concurrent writers' rows on PostgreSQL; SQLite has one writer (0).
CREATE TABLE usage_minutes (
    minute INTEGER NOT NULL,
    queue TEXT NOT NULL,
    bound_bytes INTEGER NOT NULL,
    writer INTEGER NOT NULL,
    n INTEGER NOT NULL,
    cpu_ms INTEGER NOT NULL,
    peak_bytes INTEGER NOT NULL,
    PRIMARY KEY (minute, queue, bound_bytes, writer)
) WITHOUT ROWID;

-- Every attempt that ends with its cost counted adds it to its minute and to the totals: one
-- trigger, which only a history write that names cpu_ms wakes.
CREATE TRIGGER attempts_usage AFTER UPDATE OF cpu_ms ON attempts
WHEN new.cpu_ms IS NOT NULL AND old.cpu_ms IS NULL AND new.finished_at IS NOT NULL
BEGIN
    INSERT INTO usage_minutes (minute, queue, bound_bytes, writer, n, cpu_ms, peak_bytes)
    SELECT minutes.minute, jobs.queue,
           CASE WHEN new.max_rss_bytes IS NULL THEN -1
           WHEN new.max_rss_bytes <= 1048576 THEN 1048576
           WHEN new.max_rss_bytes <= 4194304 THEN 4194304
           WHEN new.max_rss_bytes <= 16777216 THEN 16777216
           WHEN new.max_rss_bytes <= 67108864 THEN 67108864
           WHEN new.max_rss_bytes <= 268435456 THEN 268435456
           WHEN new.max_rss_bytes <= 1073741824 THEN 1073741824
           WHEN new.max_rss_bytes <= 4294967296 THEN 4294967296
           WHEN new.max_rss_bytes <= 17179869184 THEN 17179869184
           WHEN new.max_rss_bytes <= 68719476736 THEN 68719476736 ELSE -2 END,
           0, 1, new.cpu_ms, COALESCE(new.max_rss_bytes, 0)
    FROM jobs, (SELECT new.finished_at / 60000 AS minute UNION ALL SELECT -1) AS minutes
    WHERE jobs.id = new.job_id
    ON CONFLICT (minute, queue, bound_bytes, writer) DO UPDATE
    SET n = n + 1, cpu_ms = cpu_ms + excluded.cpu_ms,
        peak_bytes = peak_bytes + excluded.peak_bytes;
END;
