-- Named queries both stores run as written, for enqueue (store/enqueue.py).

-- name: insert_jobs
-- A batch with no unique_key and no dependency: nothing to decide, rows go straight in. The
-- columns, and the values' order, are those of store/rows.py's JobRow.
INSERT INTO jobs ({insert_columns})
VALUES ({insert_values})

-- name: insert_job
-- A job whose unique_key an active job holds is not inserted (no row returned): the caller
-- then looks up the holder. The index predicate makes this the arbiter of the conflict.
INSERT INTO jobs ({insert_columns})
VALUES ({insert_values})
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING
RETURNING seq
