-- Named queries of the PostgreSQL store for control before a job runs: hold, release, edit
-- and the expiry of jobs not started in time (store/control.py).

-- name: hold_set
-- What holding writes: a held job stays `scheduled` until released, out of every claim's
-- index, and promote_due skips it.
UPDATE jobs SET held = true, scheduled = true, updated_at = %(now)s::bigint

-- name: release_set
-- What releasing writes: scheduled again, the next promote_due lets it be claimed once its
-- run_at has come.
UPDATE jobs SET held = false, scheduled = true, updated_at = %(now)s::bigint

-- name: hold_jobs
-- A claim that locked the row first wins: this then sees it processing.
{hold_set}
WHERE id = ANY(%(ids)s::text[]) AND state IN ('pending', 'failed') AND NOT held
RETURNING id

-- name: release_jobs
{release_set} WHERE id = ANY(%(ids)s::text[]) AND held RETURNING id

-- name: hold_queue_batch
-- The next batch of a queue's jobs in one state held, after the cursor `after` (a seq). The
-- batch is picked once (ARRAY): as `seq IN (...)` the planner may rescan the locking subquery
-- for each row, each rescan skipping the rows this statement changed and picking more, so one
-- statement held the whole queue, in time quadratic in its size.
{hold_set} WHERE seq = ANY(ARRAY(SELECT seq FROM jobs
    WHERE queue = %(queue)s AND state = %(state)s AND seq > %(after)s::bigint AND NOT held
    ORDER BY seq LIMIT %(batch)s::bigint FOR UPDATE SKIP LOCKED))
  AND state = %(state)s RETURNING seq

-- name: release_queue_batch
{release_set} WHERE seq = ANY(ARRAY(SELECT seq FROM jobs
    WHERE queue = %(queue)s AND held ORDER BY seq LIMIT %(batch)s::bigint)) RETURNING seq

-- name: hold_in_batch
-- The next of a batch's jobs in one state held, after the cursor `after` (a seq), picked once
-- as hold_queue_batch picks them; one a claim holds is left to it.
{hold_set} WHERE seq = ANY(ARRAY(SELECT seq FROM jobs
    WHERE batch = %(batch)s AND state = %(state)s AND seq > %(after)s::bigint AND NOT held
    ORDER BY seq LIMIT %(size)s::bigint FOR UPDATE SKIP LOCKED))
  AND state = %(state)s RETURNING seq

-- name: release_in_batch
{release_set} WHERE seq = ANY(ARRAY(SELECT seq FROM jobs
    WHERE batch = %(batch)s AND state = %(state)s AND seq > %(after)s::bigint AND held
    ORDER BY seq LIMIT %(size)s::bigint)) RETURNING seq

-- name: unstarted_past_deadline
-- A batch of the jobs whose deadline passed before they started, to cancel, locked in id
-- order as other changes lock them.
SELECT {job_columns} FROM jobs WHERE id IN (
    SELECT id FROM jobs
    WHERE expires_at IS NOT NULL AND expires_at <= %(now)s::bigint
      AND state IN ('pending', 'failed')
    ORDER BY expires_at LIMIT %(batch)s::bigint)
ORDER BY id FOR UPDATE SKIP LOCKED

-- name: expire_unstarted_jobs
UPDATE jobs
SET state = 'cancelled', last_error = 'expired before it started',
    finished_at = %(now)s::bigint, updated_at = %(now)s::bigint
WHERE id = ANY(%(ids)s::text[]) AND state IN ('pending', 'failed') AND lease_owner IS NULL
RETURNING id

-- name: edit_job
-- The whole edit in one statement, only while the job waits (pending or failed, its last
-- attempt's processes gone): a claim that locked the row first wins (this then finds it
-- processing), one that comes after sees the edited job. A field left NULL (or its `set_`
-- flag false) is kept; `env` is merged into the job's.
UPDATE jobs
SET command = COALESCE(%(command)s::text, command),
    priority = COALESCE(%(priority)s::integer, priority),
    queue = COALESCE(%(queue)s::text, queue),
    run_at = COALESCE(%(run_at)s::bigint, run_at),
    scheduled = CASE WHEN %(run_at)s::bigint IS NULL THEN scheduled
                     ELSE held OR %(run_at)s::bigint > %(now)s::bigint END,
    env = CASE WHEN %(env)s::jsonb IS NULL THEN env ELSE env || %(env)s::jsonb END,
    timeout = CASE WHEN %(set_timeout)s::boolean THEN %(timeout)s::double precision
                   ELSE timeout END,
    max_retries = COALESCE(%(max_retries)s::integer, max_retries),
    max_retries_set = max_retries_set OR %(max_retries)s::integer IS NOT NULL,
    lock_key = CASE WHEN %(set_lock)s::boolean THEN %(lock)s::text ELSE lock_key END,
    depends_on = CASE WHEN %(set_deps)s::boolean THEN %(depends_on)s::jsonb ELSE depends_on END,
    waiting_on = CASE WHEN %(set_deps)s::boolean THEN %(waiting)s::integer ELSE waiting_on END,
    expires_at = CASE WHEN %(set_expires)s::boolean THEN %(expires_at)s::bigint
                      ELSE expires_at END,
    memory = CASE WHEN %(set_memory)s::boolean THEN %(memory)s::bigint ELSE memory END,
    cpus = CASE WHEN %(set_cpus)s::boolean THEN %(cpus)s::double precision ELSE cpus END,
    max_procs = CASE WHEN %(set_max_procs)s::boolean THEN %(max_procs)s::integer
                     ELSE max_procs END,
    edits = COALESCE(edits, '[]'::jsonb) || jsonb_build_array(%(edit)s::jsonb),
    updated_at = %(now)s::bigint
WHERE id = %(id)s AND state IN ('pending', 'failed') AND lease_owner IS NULL
RETURNING id

-- name: edit_drop_deps
DELETE FROM job_deps WHERE job_id = %(id)s

-- name: any_past_deadline
SELECT 1 AS value FROM jobs
WHERE expires_at IS NOT NULL AND expires_at <= %(now)s::bigint
  AND state IN ('pending', 'failed')
LIMIT 1

-- name: set_queue_defaults
-- A default kept is the row's own at this write: two settings at once each keep the other's.
INSERT INTO queues (name, paused, default_timeout, default_max_retries)
VALUES (%(name)s, false, %(timeout)s::double precision, %(max_retries)s::integer)
ON CONFLICT (name) DO UPDATE SET
    default_timeout = CASE WHEN %(keep_timeout)s::boolean THEN queues.default_timeout
                           ELSE excluded.default_timeout END,
    default_max_retries = CASE WHEN %(keep_max_retries)s::boolean THEN queues.default_max_retries
                               ELSE excluded.default_max_retries END
