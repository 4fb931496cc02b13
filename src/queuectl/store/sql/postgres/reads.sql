-- Named queries of the PostgreSQL store for reads (store/reads.py).

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = %s

-- name: ids_from
-- Ids in [lo, hi), in order: the ids starting with a prefix (compared as bytes, whatever
-- the database's collation).
SELECT id FROM jobs WHERE id COLLATE "C" >= %s AND id COLLATE "C" < %s ORDER BY id COLLATE "C"
LIMIT %s

-- name: list_jobs
-- One query per filter combination, each walking its own index newest first (migration
-- 0004): a filter that matches few of a million jobs reads only those.
SELECT {job_columns} FROM jobs
WHERE seq < %(before)s::bigint
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_state
-- `BETWEEN x AND x` and ORDER BY the index's own columns, not `= x` and `ORDER BY seq`: under
-- `=` the planner drops the constant column from the order, sees that the primary key (or a
-- one-column index) yields `seq DESC` as well, and may walk that instead, filtering, which reads
-- every newer job when the wanted ones are old (`list --state pending` at a million
-- jobs). A range is no constant: only this index gives this order. The same holds below.
SELECT {job_columns} FROM jobs
WHERE state BETWEEN %(state)s::text AND %(state)s::text AND seq < %(before)s::bigint
ORDER BY state DESC, seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_queue
SELECT {job_columns} FROM jobs
WHERE queue BETWEEN %(queue)s::text AND %(queue)s::text AND seq < %(before)s::bigint
ORDER BY queue DESC, seq DESC LIMIT %(limit)s::bigint

-- name: list_jobs_by_queue_state
-- `queue =` here: a range on the first column would no longer end the walk at the last
-- (queue, state) entry, and a state with no job would read the whole queue.
SELECT {job_columns} FROM jobs
WHERE queue = %(queue)s::text AND state BETWEEN %(state)s::text AND %(state)s::text
  AND seq < %(before)s::bigint
ORDER BY state DESC, seq DESC LIMIT %(limit)s::bigint

-- name: last_output
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = %s ORDER BY seq DESC LIMIT 1

-- name: nth_output
-- The job's n-th attempt of all it ever made (a requeue starts attempt numbers again).
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = %(id)s ORDER BY seq LIMIT 1 OFFSET %(n)s::bigint - 1

-- name: history
SELECT attempt, runner, host, started_at, finished_at, exit_code, error, duration_ms,
       token, cpu_ms, max_rss_bytes
FROM attempts WHERE job_id = %s ORDER BY seq

-- name: dependencies_of
-- The dependencies that the jobs named still have, by their edges, with their states: a
-- dependency deleted since took its edges with it, and is none any more, whatever job holds
-- its id now.
SELECT job_deps.job_id, jobs.id AS dep_id, jobs.state, job_deps.cond
FROM job_deps JOIN jobs ON jobs.id = job_deps.dep_id
WHERE job_deps.job_id = ANY(ARRAY(SELECT unnest(%s::text[])))  -- see dependants_of

-- name: counts
-- Jobs and attempts per queue and state: the compacted base plus the deltas appended since
-- (migration 0004), in one statement, so one snapshot; `deltas` says when to compact.
SELECT queue, state, SUM(n) AS n, SUM(attempts) AS attempts, SUM(delta) AS deltas FROM (
    SELECT queue, state, n, attempts, 0 AS delta FROM job_counts
    UNION ALL
    SELECT queue, state, n, attempts, 1 FROM job_count_deltas
) AS counters
GROUP BY queue, state

-- name: counters
-- The counters that only go up (migration 0012): the compacted base plus the deltas appended
-- since, in one statement, as `counts`.
SELECT queue, what, outcome, state, bound_ms, SUM(n) AS n, SUM(total_ms) AS total_ms,
       SUM(delta) AS deltas
FROM (
    SELECT queue, what, outcome, state, bound_ms, n, total_ms, 0 AS delta FROM counters
    UNION ALL
    SELECT queue, what, outcome, state, bound_ms, n, total_ms, 1 FROM counter_deltas
) AS counted
GROUP BY queue, what, outcome, state, bound_ms

-- name: done_since
SELECT COUNT(*) AS value FROM jobs WHERE finished_at >= %s::bigint AND state = 'completed'

-- name: finished_per_minute
-- Attempts that ended since the minute of an instant, per minute and outcome (failed: those
-- that will be retried), from the rows kept as they ended (migration 0009).
SELECT minute, state, SUM(n) AS n FROM finished_minutes
WHERE minute >= %(since)s::bigint / 60000
GROUP BY minute, state

-- name: recent_durations
-- The durations of the attempts that ended since the minute of an instant, per queue and
-- bucket (bound_ms: -1 none recorded, -2 longer than every bound).
SELECT queue, bound_ms, SUM(n) AS n, SUM(total_ms) AS total_ms FROM finished_minutes
WHERE minute >= %(since)s::bigint / 60000 AND bound_ms <> -1
GROUP BY queue, bound_ms

-- name: oldest_due
-- Per queue, the earliest run_at of the jobs that may start now: one probe of the
-- jobs_ready index per queue named by the counters.
SELECT queue, run_at FROM (
    SELECT names.queue, (
        SELECT run_at FROM jobs
        WHERE jobs.queue = names.queue AND state IN ('pending', 'failed') AND waiting_on = 0
          AND run_at <= %(now)s::bigint
          AND NOT held  -- a held job waits for a person, not for a runner
        ORDER BY run_at LIMIT 1) AS run_at
    FROM (SELECT queue FROM job_counts UNION SELECT queue FROM job_count_deltas) AS names
) AS due
WHERE run_at IS NOT NULL

-- name: finished_since
-- Jobs that finished at or after an instant, per final state.
SELECT state, COUNT(*) AS n FROM jobs
WHERE finished_at >= %s::bigint AND state IN ('completed', 'dead', 'cancelled')
GROUP BY state

-- name: cpu_since
-- CPU milliseconds of the attempts that ended from the minute of an instant on.
SELECT SUM(cpu_ms) AS value FROM usage_minutes WHERE minute >= %(since)s::bigint / 60000
-- name: job_filter
-- What a search or a bulk change asks of a job besides its text: NULL filters match any;
-- `in_batch` a batch's name; `held`: only held jobs.
(%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
  AND (%(queues)s::text[] IS NULL OR queue = ANY(%(queues)s::text[]))
  AND (%(in_batch)s::text IS NULL OR batch = %(in_batch)s::text)
  AND (NOT %(held)s::boolean OR held)

-- name: text_filter
-- A job whose id starts with the text, or whose command or last error holds it (ASCII
-- letters in any case, as SQLite's LIKE; `pattern` is the text as a LIKE pattern); NULL text:
-- any job.
(%(text)s::text IS NULL OR starts_with(id, %(text)s::text)
 OR command ILIKE %(pattern)s::text ESCAPE '\'
 OR last_error ILIKE %(pattern)s::text ESCAPE '\')

-- name: search_jobs
-- The jobs a search finds, newest first, among the jobs of seq [floor, before): a bounded
-- walk of the primary key, so a search that matches nothing reads at most that window, never
-- the whole store. Without the trigram indexes of migration 0019, or for an id prefix that
-- many jobs share.
SELECT {job_columns} FROM jobs
WHERE seq < %(before)s::bigint AND seq >= %(floor)s::bigint AND {job_filter} AND {text_filter}
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: search_text
-- The jobs whose command or last error holds the text, newest first, in seq [floor, before), found
-- through the trigram indexes of migration 0019 (each ILIKE alone, so that both can be used).
SELECT {job_columns} FROM jobs
WHERE seq < %(before)s::bigint AND seq >= %(floor)s::bigint AND {job_filter}
  AND (command ILIKE %(pattern)s::text ESCAPE '\' OR last_error ILIKE %(pattern)s::text ESCAPE '\')
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: search_ids
-- The jobs named (those whose id starts with the text), as search_text.
SELECT {job_columns} FROM jobs
WHERE id = ANY(%(ids)s::text[]) AND seq < %(before)s::bigint AND {job_filter}
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: search_prefix
-- The jobs whose id starts with the text, newest first, among the jobs of seq [floor,
-- before): for a prefix that many ids share (their first characters are the time they were
-- made), a walk of the primary key that soon finds the newest of them.
SELECT {job_columns} FROM jobs
WHERE seq < %(before)s::bigint AND seq >= %(floor)s::bigint
  AND starts_with(id, %(text)s::text) AND {job_filter}
ORDER BY seq DESC LIMIT %(limit)s::bigint

-- name: text_index
-- Whether the trigram indexes of migration 0019 are there (pg_trgm could be made).
SELECT (to_regclass('jobs_command_trgm') IS NOT NULL
        AND to_regclass('jobs_error_trgm') IS NOT NULL)::int AS value

-- name: list_held
-- Held jobs, newest first, of one queue and state or any (`list --held`): held jobs are few
-- next to the rest, and their own index holds them.
SELECT {job_columns} FROM jobs
WHERE held AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(state)s::text IS NULL OR state = %(state)s::text) AND seq < %(before)s::bigint
  AND (%(batch)s::text IS NULL OR batch = %(batch)s::text)
ORDER BY seq DESC LIMIT %(limit)s::bigint
