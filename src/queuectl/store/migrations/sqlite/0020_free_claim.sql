-- The jobs that neither a limited batch nor a lock holds back, in claim order: a claim that
-- looks for them beside a limited batch (flow_claim_batches, flow_free_candidates) reads them
-- straight, not through every waiting job of the batch, however long its backlog.
CREATE INDEX jobs_free_claim ON jobs (priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0
      AND lock_key IS NULL AND batch_limited = 0;
