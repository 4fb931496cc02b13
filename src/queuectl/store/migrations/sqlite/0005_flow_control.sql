-- Changes claims: a claim keeps to queue limits and job locks.
-- Flow control: per-queue concurrency and rate limits, and a job's lock.
-- A queue's limits live on its settings row (NULL: no limit); rate_ms is the window's length.
ALTER TABLE queues ADD COLUMN concurrency INTEGER;
ALTER TABLE queues ADD COLUMN rate_jobs INTEGER;
ALTER TABLE queues ADD COLUMN rate_ms INTEGER;
ALTER TABLE jobs ADD COLUMN lock_key TEXT;
-- At most one job holding a lock runs: the claim keeps to it, and this index guarantees it.
CREATE UNIQUE INDEX jobs_lock_held ON jobs (lock_key)
    WHERE lock_key IS NOT NULL AND state = 'processing';
-- Locked jobs that may start, for the claim to find the head of each lock quickly.
CREATE INDEX jobs_lock_waiting ON jobs (lock_key, priority DESC, run_at, seq)
    WHERE lock_key IS NOT NULL AND state IN ('pending', 'failed') AND waiting_on = 0;
-- The instants attempts of rate-limited queues started, kept for one window (sliding).
CREATE TABLE queue_starts (
    queue TEXT NOT NULL,
    started_at INTEGER NOT NULL
);
CREATE INDEX queue_starts_window ON queue_starts (queue, started_at);
