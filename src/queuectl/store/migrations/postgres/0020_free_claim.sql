-- The jobs that neither a limited batch nor a lock holds back, in claim order: a claim that
-- looks for them beside a limited batch (flow_claim_batches, flow_free_candidates) reads them
-- straight, not through every waiting job of the batch, however long its backlog.
CREATE INDEX jobs_free_claim ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND NOT scheduled
      AND lock_key IS NULL AND NOT batch_limited;
-- A batch's cancelled attempts still dying (few), which its running count includes: read
-- from their own entries, even where the planner has no statistics yet (a store just
-- filled), not through every job of the batch.
CREATE INDEX jobs_dying_batch ON jobs (batch)
    WHERE lease_owner IS NOT NULL AND state <> 'processing' AND batch IS NOT NULL;
-- The limited batches not finished, which a claim locks: not every batch that ever ran.
CREATE INDEX batches_open_limited ON batches (name)
    WHERE concurrency IS NOT NULL AND finished_at IS NULL;
