"""A runner deletes the audit's entries older than retain_audit, on both stores."""

from __future__ import annotations

from typing import Any

from queuectl import Queue
from queuectl.store import AuditEntry
from tests.support.runners import wait_until


def test_a_runner_expires_old_audit_entries(queue: Queue, start_runner: Any) -> None:
    queue.set_config("retain_audit", "1h")
    now = queue.now_ms()
    queue.record_audit(AuditEntry(now - 7_200_000, "t", "c", "POST", "/api/jobs", "old", 201))
    queue.record_audit(AuditEntry(now, "t", "c", "POST", "/api/jobs", "new", 201))
    start_runner("-n", "1")
    wait_until(lambda: [e.target for e in queue.audit()] == ["new"], 30, "the old entry to go")
