"""The JSON shapes of what the store returns: runners, attempts, schedules, hooks, audit
entries, tokens and batches, as the CLI's --json and the HTTP API give them."""

from __future__ import annotations

from collections.abc import Sequence
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
    return {
        "attempt": attempt.attempt,
        "runner": attempt.runner,
        "host": attempt.host,
        "started_at": ms_to_iso(attempt.started_at_ms),
        "finished_at": ms_to_iso(attempt.finished_at_ms),
        "exit_code": attempt.exit_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
        "cpu_ms": attempt.cpu_ms,
        "max_rss_bytes": attempt.max_rss_bytes,
    }


def schedule_dict(schedule: Schedule) -> dict[str, Any]:
    """A schedule as JSON (`schedule list --json`, the HTTP API)."""
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "every": schedule.every_s,
        "tz": schedule.tz,
        "job": schedule.job,
        "last_at": ms_to_iso(schedule.last_at_ms),
        "next_at": ms_to_iso(schedule.next_at_ms),
    }


def hook_dict(hook: Hook) -> dict[str, Any]:
    """A hook as JSON (`hook list --json`, the HTTP API)."""
    return {
        "name": hook.name,
        "on": list(hook.events),
        "queue": hook.queue,
        "job": hook.job,
        "created_at": ms_to_iso(hook.created_at_ms),
    }


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
    return {"name": token.name, "role": token.role, "created_at": ms_to_iso(token.created_at_ms)}


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
