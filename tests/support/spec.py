"""The SPEC's job JSON fields, written out independently of models.py so tests catch a drift."""

from __future__ import annotations

#: The job JSON fields, in order: the seed fields, `lock`, then each later version's.
SPEC_FIELDS = [
    "id",
    "command",
    "state",
    "queue",
    "priority",
    "attempts",
    "max_retries",
    "timeout",
    "run_at",
    "depends_on",
    "no_retry_exit_codes",
    "unique_key",
    "cwd",
    "env",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "exit_code",
    "last_error",
    "duration_ms",
    "lock",
    "memory",
    "cpus",
    "max_procs",
    "batch",
    "held",
    "expires_at",
    "edits",
    "requires",
    "silence_timeout",
    "progress",
]
