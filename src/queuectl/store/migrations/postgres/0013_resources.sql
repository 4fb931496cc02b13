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
