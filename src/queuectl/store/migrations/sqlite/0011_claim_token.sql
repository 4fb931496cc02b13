-- Changes claims: every write about an attempt is fenced by its claim token.
-- Every claim of a job gets a token that never repeats for it: `jobs.token` counts the job's
-- claims and is never reset (a requeue or a DLQ retry starts the attempt numbers again, not
-- this), and each history row keeps the token of its claim. A runner's writes about an
-- attempt are fenced by it, so a late result can never land on a later claim of the same
-- attempt number, and history rows never collide.
ALTER TABLE jobs ADD COLUMN token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN token INTEGER;  -- NULL: an attempt that ended before tokens
-- The attempts running now take their attempt number as token (their open history row too).
UPDATE jobs SET token = attempts WHERE state = 'processing';
UPDATE attempts SET token = attempt
WHERE finished_at IS NULL
  AND seq = (SELECT MAX(seq) FROM attempts AS last WHERE last.job_id = attempts.job_id)
  AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = attempts.job_id AND jobs.state = 'processing');
-- An attempt keeps its runner's lease (lease_owner) until its processes are gone, also once
-- its job was cancelled: until then it holds its lock and its queue's slot, and its job cannot
-- start again. Such jobs (leased, not processing) are few: found through this index.
CREATE INDEX jobs_dying ON jobs (lease_owner, queue)
    WHERE lease_owner IS NOT NULL AND state <> 'processing';
DROP INDEX jobs_lock_held;
CREATE UNIQUE INDEX jobs_lock_held ON jobs (lock_key)
    WHERE lock_key IS NOT NULL AND lease_owner IS NOT NULL;
