-- Named queries that both stores run as written, one file a flow, beside each dialect's own
-- (sql/sqlite/, sql/postgres/); a block names another as {name} to include it, from any
-- file of its dialect or of these. This one: what every flow shares.

-- name: job_columns
seq, id, command, state, queue, priority, attempts, max_retries, timeout, run_at, depends_on,
no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at, started_at, finished_at,
exit_code, last_error, duration_ms, lease_owner, lease_expires_at, lock_key, made_by,
memory, cpus, max_procs, batch, held, expires_at, edits, requires, silence_timeout, progress,
token

-- name: savepoint
SAVEPOINT fire

-- name: release_savepoint
RELEASE SAVEPOINT fire

-- name: rollback_savepoint
ROLLBACK TO SAVEPOINT fire
