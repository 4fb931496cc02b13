-- Named queries of the SQLite store for reads (store/reads.py).

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = ?

-- name: ids_from
-- Ids in [lo, hi), in order: the ids starting with a prefix (SQLite compares bytes).
SELECT id FROM jobs WHERE id >= ? AND id < ? ORDER BY id LIMIT ?

-- name: list_jobs
-- One query per filter combination, each walking its own index newest first (migration
-- 0004): a filter that matches few of a million jobs reads only those.
SELECT {job_columns} FROM jobs
WHERE seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_state
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_state
WHERE state = :state AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_queue
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_queue
WHERE queue = :queue AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: list_jobs_by_queue_state
SELECT {job_columns} FROM jobs INDEXED BY jobs_by_queue_state
WHERE queue = :queue AND state = :state AND seq < :before
ORDER BY seq DESC LIMIT :limit

-- name: last_output
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = ? ORDER BY seq DESC LIMIT 1

-- name: nth_output
-- The job's n-th attempt of all it ever made (a requeue starts attempt numbers again).
SELECT attempt, output, output_dropped FROM attempts
WHERE job_id = :id ORDER BY seq LIMIT 1 OFFSET :n - 1

-- name: history
SELECT attempt, runner, host, started_at, finished_at, exit_code, error, duration_ms,
       token, cpu_ms, max_rss_bytes
FROM attempts WHERE job_id = ? ORDER BY seq

-- name: dependencies_of
-- The dependencies that the jobs named (a JSON list) still have, by their edges, with their
-- states: a dependency deleted since took its edges with it, and is none any more, whatever
-- job holds its id now.
SELECT job_deps.job_id, jobs.id AS dep_id, jobs.state, job_deps.cond
FROM job_deps JOIN jobs ON jobs.id = job_deps.dep_id
WHERE job_deps.job_id IN (SELECT value FROM json_each(?))

-- name: counts
-- Jobs and attempts per queue and state, from the counters of migration 0004 (`deltas`:
-- PostgreSQL's not yet compacted; SQLite updates its counters in place).
SELECT queue, state, n, attempts, 0 AS deltas FROM job_counts WHERE n > 0

-- name: counters
-- The counters that only go up (migration 0012), one row each; `deltas` as in `counts`.
SELECT queue, what, outcome, state, bound_ms, n, total_ms, 0 AS deltas FROM counters

-- name: done_since
SELECT COUNT(*) AS value FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= ? AND finished_at IS NOT NULL AND +state = 'completed'

-- name: finished_per_minute
-- Attempts that ended since the minute of an instant, per minute and outcome (failed: those
-- that will be retried), from the rows kept as they ended (migration 0009).
SELECT minute, state, SUM(n) AS n FROM finished_minutes
WHERE minute >= :since / 60000
GROUP BY minute, state

-- name: recent_durations
-- The durations of the attempts that ended since the minute of an instant, per queue and
-- bucket (bound_ms: -1 none recorded, -2 longer than every bound).
SELECT queue, bound_ms, SUM(n) AS n, SUM(total_ms) AS total_ms FROM finished_minutes
WHERE minute >= :since / 60000 AND bound_ms <> -1
GROUP BY queue, bound_ms

-- name: oldest_due
-- Per queue, the earliest run_at of the jobs that may start now: one probe of the
-- jobs_ready index per queue that has pending or failed jobs.
SELECT queue, run_at FROM (
    SELECT names.queue, (
        SELECT run_at FROM jobs INDEXED BY jobs_ready
        WHERE jobs.queue = names.queue AND state IN ('pending', 'failed') AND waiting_on = 0
          AND run_at <= :now
          AND held = 0  -- a held job waits for a person, not for a runner
        ORDER BY run_at LIMIT 1) AS run_at
    FROM job_counts AS names
    WHERE names.state IN ('pending', 'failed') AND names.n > 0
    GROUP BY names.queue)
WHERE run_at IS NOT NULL

-- name: finished_since
-- Jobs that finished at or after an instant, per final state.
SELECT state, COUNT(*) AS n FROM jobs INDEXED BY jobs_finished
WHERE finished_at >= ? AND finished_at IS NOT NULL
  AND +state IN ('completed', 'dead', 'cancelled')
GROUP BY state

-- name: cpu_since
-- CPU milliseconds of the attempts that ended from the minute of an instant on.
SELECT SUM(cpu_ms) AS value FROM usage_minutes WHERE minute >= :since / 60000
-- name: job_filter
-- What a search or a bulk change asks of a job besides its text: NULL filters match any;
-- `states` and `queues` are JSON lists; `in_batch` a batch's name; `held` 1: only held jobs.
(:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
  AND (:in_batch IS NULL OR batch = :in_batch)
  AND (:held = 0 OR held = 1)

-- name: text_filter
-- A job whose id starts with the text, or whose command or last error holds it (ASCII
-- letters in any case; `pattern` is the text as a LIKE pattern); NULL text: any job.
(:text IS NULL OR substr(id, 1, length(:text)) = :text
 OR command LIKE :pattern ESCAPE '\' OR last_error LIKE :pattern ESCAPE '\')

-- name: search_jobs
-- The jobs a search finds, newest first, among the jobs of seq [floor, before): a bounded
-- walk of the primary key, so a search that matches nothing reads at most that window, never
-- the whole store. For text the index cannot look up (shorter than a trigram), or an id
-- prefix that many jobs share.
SELECT {job_columns} FROM jobs
WHERE seq < :before AND seq >= :floor AND {job_filter} AND {text_filter}
ORDER BY seq DESC LIMIT :limit

-- name: search_text
-- The jobs whose command or last error holds the text, newest first, in seq [floor, before): the
-- candidates that hold each of the text's trigrams (`match`, from the index of migration
-- 0019), walked newest first, each checked as search_jobs checks it, until a page is full.
WITH hits(hit) AS (
    SELECT rowid FROM jobs_text
    WHERE jobs_text MATCH :match AND rowid < :before AND rowid >= :floor
    ORDER BY rowid DESC)
SELECT {job_columns} FROM hits CROSS JOIN jobs ON jobs.seq = hits.hit
WHERE {job_filter} AND {text_filter}
ORDER BY hits.hit DESC LIMIT :limit

-- name: search_ids
-- The jobs named (a JSON list: those whose id starts with the text), as search_text.
SELECT {job_columns} FROM jobs
WHERE id IN (SELECT value FROM json_each(:ids)) AND seq < :before AND {job_filter}
ORDER BY seq DESC LIMIT :limit

-- name: search_prefix
-- The jobs whose id starts with the text, newest first, among the jobs of seq [floor,
-- before): for a prefix that many ids share (their first characters are the time they were
-- made), a walk of the primary key that soon finds the newest of them.
SELECT {job_columns} FROM jobs
WHERE seq < :before AND seq >= :floor AND substr(id, 1, length(:text)) = :text
  AND {job_filter}
ORDER BY seq DESC LIMIT :limit

-- name: text_index
-- Whether the index of migration 0019 is there (always, on SQLite).
SELECT COUNT(*) AS value FROM sqlite_master WHERE name = 'jobs_text'

-- name: list_held
-- Held jobs, newest first, of one queue and state or any (`list --held`): held jobs are few
-- next to the rest, and their own index holds them.
SELECT {job_columns} FROM jobs INDEXED BY jobs_held
WHERE held = 1 AND (:queue IS NULL OR queue = :queue) AND (:state IS NULL OR state = :state)
  AND seq < :before AND (:batch IS NULL OR batch = :batch)
ORDER BY seq DESC LIMIT :limit
