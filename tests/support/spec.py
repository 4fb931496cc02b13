"""The SPEC's job JSON fields, written out independently of models.py so tests catch a drift."""

from __future__ import annotations

#: SPEC section 2, in order, plus `lock` (SPEC 9.2), then `requires`, `silence_timeout` and
#: `progress` (SPEC 10.5, 10.6).
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
    "requires",
    "silence_timeout",
    "progress",
]
