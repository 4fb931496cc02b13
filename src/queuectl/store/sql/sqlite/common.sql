-- Named queries of the SQLite store, one file a flow; a block names another as {name}
-- to include it, from any file. This one: what every flow shares, and what the dialect runs.
-- Instants are epoch milliseconds. Names starting `sqlite_` exist only in this dialect.

-- name: job_columns
seq, id, command, state, queue, priority, attempts, max_retries, timeout, run_at, depends_on,
no_retry_exit_codes, unique_key, cwd, env, created_at, updated_at, started_at, finished_at,
exit_code, last_error, duration_ms, lease_owner, lease_expires_at, lock_key, made_by,
requires, silence_timeout, progress, token

-- name: savepoint
SAVEPOINT fire

-- name: release_savepoint
RELEASE SAVEPOINT fire

-- name: rollback_savepoint
ROLLBACK TO SAVEPOINT fire

-- name: verify
-- `init` reads the whole file's structure, so corruption is named now rather than met later.
PRAGMA quick_check
