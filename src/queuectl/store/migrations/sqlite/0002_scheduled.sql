-- Changes claims: a claim takes only jobs promoted from `scheduled`, which runners promote.
-- Jobs waiting for a future run_at (delayed jobs, retries after a backoff) leave the claim
-- index until they are due: a runner promotes them (scheduled = 0) when their time comes, so
-- a claim never walks past delayed jobs, however many are stored.
ALTER TABLE jobs ADD COLUMN scheduled INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET scheduled = 1 WHERE state IN ('pending', 'failed');  -- the due are promoted at once
DROP INDEX jobs_claim;
CREATE INDEX jobs_claim ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0;
DROP INDEX jobs_due;
CREATE INDEX jobs_scheduled ON jobs (run_at) WHERE scheduled = 1 AND state IN ('pending', 'failed');
