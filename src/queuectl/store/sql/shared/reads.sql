-- Named queries both stores run as written, for reads (store/reads.py).

-- name: usage_totals
-- What the attempts that ended cost since the store began (minute -1), per queue and bucket
-- of peak memory (-1: none recorded, -2: above every bound).
SELECT queue, bound_bytes, SUM(n) AS n, SUM(cpu_ms) AS cpu_ms, SUM(peak_bytes) AS peak_bytes
FROM usage_minutes WHERE minute = -1
GROUP BY queue, bound_bytes ORDER BY queue, bound_bytes

-- name: oldest_seq
SELECT COALESCE(MIN(seq), 0) AS value FROM jobs
