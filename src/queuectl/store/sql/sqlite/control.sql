-- Named queries of the SQLite store for control before a job runs: hold, release, edit and
-- the expiry of jobs not started in time (store/control.py).

-- name: hold_set
-- What holding writes: a held job stays `scheduled` until released, out of every claim's
-- index, and promote_due skips it.
UPDATE jobs SET held = 1, scheduled = 1, updated_at = :now

-- name: release_set
-- What releasing writes: scheduled again, the next promote_due lets it be claimed once its
-- run_at has come.
UPDATE jobs SET held = 0, scheduled = 1, updated_at = :now

-- name: hold_jobs
-- (`+state`: each row found by its id.)
{hold_set}
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN ('pending', 'failed') AND held = 0
RETURNING id

-- name: release_jobs
{release_set} WHERE id IN (SELECT value FROM json_each(:ids)) AND held = 1 RETURNING id

-- name: hold_queue_batch
-- The next batch of a queue's jobs in one state held, after the cursor `after` (a seq).
{hold_set} WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_by_queue_state
    WHERE queue = :queue AND state = :state AND seq > :after AND held = 0
    ORDER BY seq LIMIT :batch) RETURNING seq

-- name: release_queue_batch
{release_set} WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_held
    WHERE queue = :queue AND held = 1 ORDER BY seq LIMIT :batch) RETURNING seq

-- name: hold_in_batch
-- The next of a batch's jobs in one state held, after the cursor `after` (a seq).
{hold_set} WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_by_batch
    WHERE batch = :batch AND state = :state AND seq > :after AND held = 0
    ORDER BY seq LIMIT :size) RETURNING seq

-- name: release_in_batch
{release_set} WHERE seq IN (SELECT seq FROM jobs INDEXED BY jobs_by_batch
    WHERE batch = :batch AND state = :state AND seq > :after AND held = 1
    ORDER BY seq LIMIT :size) RETURNING seq

-- name: unstarted_past_deadline
-- A batch of the jobs whose deadline passed before they started, to cancel.
SELECT {job_columns} FROM jobs INDEXED BY jobs_expiring
WHERE expires_at IS NOT NULL AND expires_at <= :now AND state IN ('pending', 'failed')
ORDER BY expires_at LIMIT :batch

-- name: expire_unstarted_jobs
UPDATE jobs
SET state = 'cancelled', last_error = 'expired before it started', finished_at = :now,
    updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN ('pending', 'failed')
  AND lease_owner IS NULL
RETURNING id

-- name: edit_job
-- The whole edit in one statement, only while the job waits (pending or failed, its last
-- attempt's processes gone): a claim sees the job before or after it, never a mix. A field
-- left NULL (or its `set_` flag false) is kept; `env` is merged into the job's.
UPDATE jobs
SET command = COALESCE(:command, command),
    priority = COALESCE(:priority, priority),
    queue = COALESCE(:queue, queue),
    run_at = COALESCE(:run_at, run_at),
    scheduled = CASE WHEN :run_at IS NULL THEN scheduled ELSE held OR :run_at > :now END,
    env = CASE WHEN :env IS NULL THEN env ELSE json_patch(env, :env) END,
    timeout = CASE WHEN :set_timeout THEN :timeout ELSE timeout END,
    max_retries = COALESCE(:max_retries, max_retries),
    max_retries_set = max_retries_set OR :max_retries IS NOT NULL,
    lock_key = CASE WHEN :set_lock THEN :lock ELSE lock_key END,
    depends_on = CASE WHEN :set_deps THEN :depends_on ELSE depends_on END,
    waiting_on = CASE WHEN :set_deps THEN :waiting ELSE waiting_on END,
    expires_at = CASE WHEN :set_expires THEN :expires_at ELSE expires_at END,
    memory = CASE WHEN :set_memory THEN :memory ELSE memory END,
    cpus = CASE WHEN :set_cpus THEN :cpus ELSE cpus END,
    max_procs = CASE WHEN :set_max_procs THEN :max_procs ELSE max_procs END,
    edits = json_insert(COALESCE(edits, '[]'), '$[#]', json(:edit)),
    updated_at = :now
WHERE id = :id AND state IN ('pending', 'failed') AND lease_owner IS NULL
RETURNING id

-- name: edit_drop_deps
DELETE FROM job_deps WHERE job_id = :id

-- name: any_past_deadline
SELECT 1 AS value FROM jobs INDEXED BY jobs_expiring
WHERE expires_at IS NOT NULL AND expires_at <= :now AND state IN ('pending', 'failed')
LIMIT 1

-- name: set_queue_defaults
-- A default kept is the row's own at this write: two settings at once each keep the other's.
INSERT INTO queues (name, paused, default_timeout, default_max_retries)
VALUES (:name, 0, :timeout, :max_retries)
ON CONFLICT (name) DO UPDATE SET
    default_timeout = CASE WHEN :keep_timeout THEN queues.default_timeout
                           ELSE excluded.default_timeout END,
    default_max_retries = CASE WHEN :keep_max_retries THEN queues.default_max_retries
                               ELSE excluded.default_max_retries END
