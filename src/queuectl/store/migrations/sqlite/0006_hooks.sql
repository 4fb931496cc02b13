-- Changes claims: a settlement fires the hooks of the events it makes.
-- Hooks: a job reaching an event enqueues a hook job in the same transaction.
CREATE TABLE hooks (
    name TEXT PRIMARY KEY,
    events TEXT NOT NULL,          -- JSON list of completed, failed, dead, cancelled
    queue TEXT,                    -- only jobs of this queue; NULL: every queue
    job TEXT NOT NULL,             -- the job to enqueue, as validated JSON
    created_at INTEGER NOT NULL
);
-- What made a hook job ("hook NAME: EVENT of JOB"); hook jobs fire no hooks.
ALTER TABLE jobs ADD COLUMN made_by TEXT;
