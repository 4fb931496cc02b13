-- Named queries of the PostgreSQL store for settling attempts and firing hooks (store/settle.py,
-- store/hooks.py).

-- name: fenced_jobs
-- The attempts still ours among those named; the caller compares each claim's token.
-- FOR UPDATE, in id order (one lock order for every settler, so two cannot deadlock): the rows
-- stay ours until commit, so a concurrent cancel or reap cannot slip in before the settlement.
-- has_dependants is always true here: this statement's snapshot is taken before it waits for
-- a row locked by an enqueue of a dependant (dep_states, FOR SHARE), so it could miss the edge
-- that enqueue committed; the update of dependants, a later statement, sees it.
SELECT id, attempts, token, max_retries, max_retries_set, no_retry_exit_codes, queue, batch,
       true AS has_dependants
FROM jobs
WHERE id = ANY(%s) AND state = 'processing' AND lease_owner = %s
ORDER BY id
FOR UPDATE

-- name: settle_job
UPDATE jobs
SET state = %(state)s::text, run_at = COALESCE(%(run_at)s::bigint, run_at),
    scheduled = COALESCE(%(run_at)s::bigint > %(now)s::bigint, false),
    finished_at = %(finished_at)s::bigint, exit_code = %(exit_code)s::integer,
    last_error = %(last_error)s::text,
    duration_ms = COALESCE(%(duration_ms)s::bigint,
                           GREATEST(0, %(finished_at)s::bigint - started_at)),
    updated_at = %(now)s::bigint, lease_owner = NULL, lease_expires_at = NULL,
    cpu_ms = %(cpu_ms)s::bigint, max_rss_bytes = %(max_rss_bytes)s::bigint  -- counted (0018)
WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s
  AND token = %(token)s::bigint

-- name: let_go
-- The processes of an attempt no longer processing (cancelled) are gone, as its runner says
-- (or its runner is gone): its lease, which held its lock and its queue's slot, is let go. A
-- job run again meanwhile waited on this (see `requeue`): it may start now.
UPDATE jobs
SET lease_owner = NULL, lease_expires_at = NULL,
    waiting_on = waiting_on - CASE WHEN state IN ('pending', 'failed') THEN 1 ELSE 0 END
WHERE id = %(id)s AND lease_owner = %(owner)s AND token = %(token)s::bigint
  AND state <> 'processing'

-- name: finish_attempt
-- The entry of this claim of the job, if still open. A null output keeps what the live copy
-- saved.
UPDATE attempts
SET finished_at = %(finished_at)s::bigint, exit_code = %(exit_code)s::integer,
    error = %(error)s::text,
    duration_ms = COALESCE(%(duration_ms)s::bigint,
                           GREATEST(0, %(finished_at)s::bigint - started_at)),
    output = COALESCE(%(output)s::bytea, output),
    output_dropped = COALESCE(%(dropped)s::bigint, output_dropped),
    cpu_ms = %(cpu_ms)s::bigint, max_rss_bytes = %(max_rss_bytes)s::bigint
WHERE job_id = %(id)s AND token = %(token)s::bigint AND finished_at IS NULL

-- name: unblock_dependants
-- Dependants of the jobs that just completed (a list) wait on that many fewer.
UPDATE jobs SET waiting_on = jobs.waiting_on - done.n
FROM (SELECT job_id, COUNT(*) AS n FROM job_deps WHERE dep_id = ANY(%(ids)s::text[])
        AND cond IN ('completed', 'finished')  -- those waiting for a failure: see cascade
      GROUP BY job_id) AS done
WHERE jobs.id = done.job_id AND jobs.state = 'pending' AND jobs.waiting_on > 0

-- name: dependants_of
-- The edges from the jobs named to their dependants. `ANY(ARRAY(...))`: a list the planner
-- cannot count, so it probes the index for each, whatever the statistics say (a store just
-- filled has none, and a list of a batch's ids then looks like a good part of the table).
SELECT dep_id, job_id, cond FROM job_deps WHERE dep_id = ANY(ARRAY(SELECT unnest(%s::text[])))

-- name: cancel_dependants
-- Dependants cancelled because a dependency ended `state` (dead or cancelled): `doomed` maps
-- each to the job it names as the reason (a JSON object). Those still pending or failed are
-- returned, for the hooks on `cancelled` and the next step of the cascade. Each row is found
-- by its id, whatever the statistics say (a store just filled has none): `= ANY(ARRAY(...))`,
-- as a join with the object's rows, which the planner cannot count, may hash every pending
-- job; and `state || ''`, which no index of state can serve, as a walk of every pending job
-- may look cheaper (the same in cancel_waiting and requeue).
UPDATE jobs
SET state = 'cancelled',
    last_error = 'dependency ' || (%(doomed)s::jsonb ->> id) || ' is ' || %(state)s::text,
    finished_at = %(now)s::bigint, updated_at = %(now)s::bigint
WHERE id = ANY(ARRAY(SELECT jsonb_object_keys(%(doomed)s::jsonb)))
  AND state || '' IN ('pending', 'failed')
RETURNING id, queue, attempts, exit_code, last_error, made_by, batch

-- name: hook_subjects
-- The queue of each settled job, and whether a hook made it (such jobs fire no hooks).
SELECT id, queue, made_by FROM jobs WHERE id = ANY(%s)

-- name: insert_hook_job
-- A job's row (store/rows.py's JobRow) and made_by; a hook job whose unique_key an active job
-- holds is not inserted (the hook's way to send one notification for a burst of events).
INSERT INTO jobs ({insert_columns}, made_by)
VALUES ({insert_values}, %s)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('pending', 'processing', 'failed')
    DO NOTHING

-- name: unblock_met
-- Dependants whose condition a dependency's end met (a JSON object: id -> how many of theirs)
-- wait on that many fewer.
UPDATE jobs SET waiting_on = GREATEST(0, jobs.waiting_on - met.value::integer)
FROM jsonb_each_text(%(jobs)s::jsonb) AS met
WHERE jobs.id = met.key AND jobs.state = 'pending' AND jobs.waiting_on > 0
