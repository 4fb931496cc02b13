-- Named queries of the SQLite store, one file a flow; a block names another as {name}
-- to include it, from any file. This one: what every flow shares, and what the dialect runs.
-- Instants are epoch milliseconds. Names starting `sqlite_` exist only in this dialect.

-- name: verify
-- `init` reads the whole file's structure, so corruption is named now rather than met later.
PRAGMA quick_check

-- name: enforced
-- (an expression, over a row of jobs) Whether the claiming runner enforces every limit the
-- job runs under, its own or its queue's default: `enforces` holds the limits' bits
-- (models.limits_mask). A runner that enforces them all (7) takes any job, and a job without
-- limits costs a claim no more than that comparison and three NULL checks.
(:enforces = 7 OR (
    (memory IS NULL OR (:enforces & 1) <> 0) AND (cpus IS NULL OR (:enforces & 2) <> 0)
    AND (max_procs IS NULL OR (:enforces & 4) <> 0)
    AND queue NOT IN (SELECT name FROM queues
                      WHERE memory IS NOT NULL AND (:enforces & 1) = 0
                         OR cpus IS NOT NULL AND (:enforces & 2) = 0
                         OR max_procs IS NOT NULL AND (:enforces & 4) = 0)))

-- name: claimed_limits
-- (columns of a claim's RETURNING) The job's own limits, and its queue's defaults as a JSON
-- array only for a queue that has some: the set of such queues is read once a statement.
memory, cpus, max_procs,
CASE WHEN queue IN (SELECT name FROM queues
                    WHERE memory IS NOT NULL OR cpus IS NOT NULL OR max_procs IS NOT NULL)
     THEN (SELECT json_array(defaults.memory, defaults.cpus, defaults.max_procs)
           FROM queues AS defaults WHERE defaults.name = jobs.queue) END AS queue_limits
