-- Changes claims: held and expired jobs are not claimed, and a claim applies its queue's defaults.
-- Control before a job runs. `held`: the job waits for a release; it stays `scheduled` (out of
-- the claim's indexes) and promotion skips it, so a claim never walks past held jobs.
-- `expires_at`: a job not started by then is cancelled by a runner's maintenance (and never
-- claimed). `max_retries_set`: whether the job gave its own max_retries (else its queue's
-- default applies, when the queue has one). `edits`: who changed the job, when, which fields.
-- A queue's defaults (NULL: none) apply to the attempts of its jobs that set none.
ALTER TABLE jobs ADD COLUMN held BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE jobs ADD COLUMN expires_at BIGINT;
ALTER TABLE jobs ADD COLUMN max_retries_set BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE jobs ADD COLUMN edits JSONB;
ALTER TABLE queues ADD COLUMN default_timeout DOUBLE PRECISION;
ALTER TABLE queues ADD COLUMN default_max_retries INTEGER;
DROP INDEX jobs_scheduled;
CREATE INDEX jobs_scheduled ON jobs (run_at)
    WHERE scheduled AND NOT held AND state IN ('pending', 'failed');
CREATE INDEX jobs_held ON jobs (queue, seq) WHERE held;
CREATE INDEX jobs_expiring ON jobs (expires_at)
    WHERE expires_at IS NOT NULL AND state IN ('pending', 'failed');
