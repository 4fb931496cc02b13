-- Named queries of the PostgreSQL store, one file a flow; a block names another as {name}
-- to include it, from any file. This one: what every flow shares, and what the dialect runs.
-- Instants are epoch milliseconds on the database's clock. Names starting `pg_` exist
-- only in this dialect (migration lock, clock, LISTEN/NOTIFY, counter compaction).

-- name: pg_now_ms
-- clock_timestamp(), not now(): the instant of the read, not of the transaction's start.
SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS value

-- name: pg_migration_lock
-- Held until commit; advisory locks are per database, so other databases are not blocked.
SELECT pg_advisory_xact_lock(hashtextextended('queuectl.migrate', 0))

-- name: pg_schema_exists
SELECT to_regclass('queuectl_schema') IS NOT NULL AS value

-- name: pg_create_schema_table
CREATE TABLE IF NOT EXISTS queuectl_schema (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)

-- name: pg_schema_version
SELECT COALESCE(MAX(version), 0) AS value FROM queuectl_schema

-- name: pg_record_migration
INSERT INTO queuectl_schema (version, name) VALUES (%s, %s)

-- name: pg_listen
LISTEN queuectl_wakeup

-- name: pg_notify
-- Inside a transaction it is delivered at commit, and not at all on rollback.
NOTIFY queuectl_wakeup

-- name: verify
-- PostgreSQL guards its own pages (WAL, optional checksums): nothing for queuectl to walk.
SELECT 'ok' AS value

-- name: pg_count_deltas
-- Whether enough deltas piled up to be worth compacting (reads at most `limit` of them).
SELECT COUNT(*) AS value FROM (SELECT 1 FROM job_count_deltas LIMIT %s::bigint) AS piled

-- name: pg_compaction_lock
-- One compactor at a time (the others skip): two would lock base rows in any order.
SELECT pg_try_advisory_xact_lock(hashtextextended('queuectl.compact_counts', 0)) AS value

-- name: pg_compact_counts
-- Folds the committed deltas into the base in one transaction: a concurrent read sees either
-- both or neither; deltas of transactions still open stay for the next compaction. The
-- counters that only go up (migration 0012) are folded alongside.
WITH folded AS (DELETE FROM job_count_deltas RETURNING queue, state, n, attempts),
counted AS (
    DELETE FROM counter_deltas RETURNING queue, what, outcome, state, bound_ms, n, total_ms
),
totals AS (
    INSERT INTO counters AS base (queue, what, outcome, state, bound_ms, n, total_ms)
    SELECT queue, what, outcome, state, bound_ms, SUM(n), SUM(total_ms) FROM counted
    GROUP BY queue, what, outcome, state, bound_ms
    ON CONFLICT (queue, what, outcome, state, bound_ms) DO UPDATE
    SET n = base.n + excluded.n, total_ms = base.total_ms + excluded.total_ms
)
INSERT INTO job_counts AS base (queue, state, n, attempts)
SELECT queue, state, SUM(n), SUM(attempts) FROM folded GROUP BY queue, state
ON CONFLICT (queue, state) DO UPDATE
SET n = base.n + excluded.n, attempts = base.attempts + excluded.attempts

-- name: enforced
-- (an expression, over a row of jobs) Whether the claiming runner enforces every limit the
-- job runs under, its own or its queue's default: `enforces` holds the limits' bits
-- (models.limits_mask). A runner that enforces them all (7) takes any job, and a job without
-- limits costs a claim no more than that comparison and three NULL checks.
(%(enforces)s::integer = 7 OR (
    (memory IS NULL OR (%(enforces)s::integer & 1) <> 0)
    AND (cpus IS NULL OR (%(enforces)s::integer & 2) <> 0)
    AND (max_procs IS NULL OR (%(enforces)s::integer & 4) <> 0)
    AND queue <> ALL(ARRAY(
        SELECT name FROM queues
        WHERE memory IS NOT NULL AND (%(enforces)s::integer & 1) = 0
           OR cpus IS NOT NULL AND (%(enforces)s::integer & 2) = 0
           OR max_procs IS NOT NULL AND (%(enforces)s::integer & 4) = 0))))

-- name: claimed_limits
-- (columns of a claim's RETURNING) The job's own limits, and its queue's defaults as a JSON
-- array only for a queue that has some: the set of such queues is read once a statement.
jobs.memory, jobs.cpus, jobs.max_procs,
CASE WHEN jobs.queue = ANY(ARRAY(
         SELECT name FROM queues
         WHERE memory IS NOT NULL OR cpus IS NOT NULL OR max_procs IS NOT NULL))
     THEN (SELECT jsonb_build_array(defaults.memory, defaults.cpus, defaults.max_procs)
           FROM queues AS defaults WHERE defaults.name = jobs.queue) END AS queue_limits
