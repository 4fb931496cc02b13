-- Named queries both stores run as written, for cancel, requeue, purge (store/actions.py).

-- name: newest_seq
SELECT COALESCE(MAX(seq), 0) AS value FROM jobs
