-- Named queries both stores run as written, for control before a job runs: hold, release, edit
-- and the expiry of jobs not started in time (store/control.py).

-- name: queue_defaults
-- The queues whose jobs take defaults (a runner reads them at most once a second).
SELECT name, default_timeout, default_max_retries FROM queues
WHERE default_timeout IS NOT NULL OR default_max_retries IS NOT NULL
