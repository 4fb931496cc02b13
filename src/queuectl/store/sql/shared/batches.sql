-- Named queries both stores run as written, for batches (store/batches.py).

-- name: batch_finish_tail
-- The end of batch_finish: a batch finishes once none of its jobs may run (or run again);
-- `completed` if none of them ended dead or cancelled.
  AND NOT EXISTS (SELECT 1 FROM batch_counts
                  WHERE batch_counts.batch = batches.name
                    AND state IN ('pending', 'processing', 'failed') AND n > 0)
RETURNING name, NOT EXISTS (SELECT 1 FROM batch_counts
                            WHERE batch_counts.batch = batches.name
                              AND state IN ('dead', 'cancelled') AND n > 0) AS completed
