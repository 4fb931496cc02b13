"""The JSON shapes of what the store returns: runners, attempts, schedules, hooks, audit
entries, tokens and batches, as the CLI's --json and the HTTP API give them."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from queuectl.durations import ms_to_iso
from queuectl.models import COMPLETED, FINISHED_STATES, STATES, Job

if TYPE_CHECKING:
    from queuectl.store import Attempt, AuditEntry, Batch, Hook, Runner, Schedule, Token


def runner_dict(runner: Runner) -> dict[str, Any]:
    """A runner as `status --json` gives it."""
    return {
        "id": runner.id,
        "host": runner.host,
        "pid": runner.pid,
        "workers": runner.workers,
        "queues": runner.queues,
        "started_at": ms_to_iso(runner.started_at_ms),
        "heartbeat_at": ms_to_iso(runner.heartbeat_at_ms),
        "running": list(runner.running),
        "stopping": runner.stop_requested,
        "enforces": list(runner.enforces),
        "tags": list(runner.tags),
    }


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    """An attempt as a job's history entry in `show --json`."""
    return record_json(attempt, omit=("token",))


def schedule_dict(schedule: Schedule) -> dict[str, Any]:
    """A schedule as JSON (`schedule list --json`, the HTTP API)."""
    return record_json(schedule, omit=("created_at_ms",), renamed={"every_s": "every"})


def hook_dict(hook: Hook) -> dict[str, Any]:
    """A hook as JSON (`hook list --json`, the HTTP API)."""
    return record_json(hook, renamed={"events": "on"})


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON (`audit --json`, the HTTP API)."""
    return {
        "at": ms_to_iso(entry.at_ms),
        "token": entry.token,
        "client": entry.client,
        "method": entry.method,
        "route": entry.route,
        "target": entry.target,
        "status": entry.status,
    }


def token_dict(token: Token) -> dict[str, Any]:
    """A token as `token list --json` shows it (never the token itself)."""
    return record_json(token)


def record_json(
    record: Any, omit: Sequence[str] = (), renamed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A record's fields as JSON, in their order, but those in `omit`: an instant `X_at_ms`
    as ISO-8601 text under `X_at`, a field in `renamed` under its new name."""
    found: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        if field.name in omit:
            continue
        if field.name.endswith("_at_ms"):
            found[field.name.removesuffix("_ms")] = ms_to_iso(value)
        else:
            found[(renamed or {}).get(field.name, field.name)] = value
    return found


def batch_dict(batch: Batch, now_ms: int) -> dict[str, Any]:
    """A batch's JSON: counts by state, done of total, first start, last end, and while it
    runs an estimate of the seconds left, from its pace since its first start."""
    counts = {state: batch.counts.get(state, 0) for state in STATES}
    total = sum(counts.values())
    done = sum(counts[state] for state in FINISHED_STATES)
    finished = total > 0 and done == total
    eta_s: float | None = None
    if not finished and done and batch.started_at_ms is not None and now_ms > batch.started_at_ms:
        eta_s = round((total - done) * (now_ms - batch.started_at_ms) / done / 1000, 1)
    return {
        "name": batch.name,
        "total": total,
        "done": done,
        "counts": counts,
        "finished": finished,
        "completed": finished and counts[COMPLETED] == total,
        "concurrency": batch.concurrency,
        "created_at": ms_to_iso(batch.created_at_ms),
        "first_start": ms_to_iso(batch.started_at_ms),
        "last_end": ms_to_iso(batch.ended_at_ms),
        "eta_s": eta_s,
    }


def jobs_json(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    """Jobs as `list --json` and the HTTP API give them."""
    return [job.to_dict() for job in jobs]
