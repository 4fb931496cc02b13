-- A limited queue's next jobs in claim order, read straight from the queue's own entries: a
-- backlog of other queues ahead in jobs_claim is never walked to find them.
CREATE INDEX jobs_queue_claim ON jobs (queue, priority DESC, run_at, seq)
    WHERE state IN ('pending', 'failed') AND waiting_on = 0 AND scheduled = 0;
