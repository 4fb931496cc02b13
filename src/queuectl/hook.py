"""Hooks: a job enqueued when a job completes, fails, dies or is cancelled, or a batch finishes.

Validation of a hook and the job it makes for one event; the store fires hooks in the same
transaction as the change they follow, so a hook job is never lost nor doubled by a crash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from queuectl.errors import InvalidInputError
from queuectl.models import NewJob, new_job, validate_id

EVENTS = ("completed", "failed", "dead", "cancelled", "batch_completed", "batch_finished")
MAX_NAME = 100
#: Fields a hook's job cannot have: each event makes a new job, which has no fixed id, no
#: dependency (it might be gone when the event comes) and no absolute start.
REFUSED_FIELDS = ("id", "depends_on", "run_at")


@dataclass(frozen=True)
class Event:
    """A job reaching an event, as the hook job's environment tells it."""

    job_id: str
    queue: str
    event: str
    attempt: int
    exit_code: int | None
    error: str | None
    #: The batch that finished, for batch_completed and batch_finished (the job is its last).
    batch: str | None = None


def parse_events(on: str | list[str]) -> list[str]:
    """`completed,dead` (or a list) as checked event names, in EVENTS' order."""
    names = on.split(",") if isinstance(on, str) else list(on)
    names = [name.strip() for name in names if isinstance(name, str) and name.strip()]
    if not names:
        raise InvalidInputError(f"--on: name at least one event: {', '.join(EVENTS)}")
    for name in names:
        if name not in EVENTS:
            raise InvalidInputError(f"--on: {name!r} is not one of {', '.join(EVENTS)}")
    return [event for event in EVENTS if event in names]


def validate_hook(
    name: str, on: str | list[str], queue: str | None, job: dict[str, Any]
) -> tuple[str, list[str], str | None, dict[str, Any]]:
    """Checked (name, events, queue, job template); the template keeps the adder's cwd."""
    validate_id(name, "hook name")
    if len(name) > MAX_NAME:
        raise InvalidInputError(f"hook name: at most {MAX_NAME} characters")
    events = parse_events(on)
    if queue is not None:
        validate_id(queue, "--queue")
    for field in REFUSED_FIELDS:
        if isinstance(job, dict) and job.get(field) not in (None, []):
            raise InvalidInputError(f"a hook's job cannot have {field}: each event makes a new job")
    checked = new_job(job)
    template = {key: value for key, value in job.items() if value not in (None, [])}
    template["cwd"] = checked.cwd
    return name, events, queue, template


def made_by(hook: str, event: Event) -> str:
    """What `show` and `explain` say made a hook job."""
    if event.batch is not None:
        return f"hook {hook}: {event.event} of batch {event.batch}"
    return f"hook {hook}: {event.event} of {event.job_id}"


def hook_job(template: dict[str, Any], event: Event) -> NewJob:
    """The job a hook enqueues for one event: its template, with the event in its environment."""
    job = new_job(template)
    job.env = {
        **job.env,
        "QUEUECTL_EVENT": event.event,
        "QUEUECTL_EVENT_JOB": event.job_id,
        "QUEUECTL_EVENT_QUEUE": event.queue,
        "QUEUECTL_EVENT_ATTEMPT": str(event.attempt),
        "QUEUECTL_EVENT_EXIT_CODE": "" if event.exit_code is None else str(event.exit_code),
        "QUEUECTL_EVENT_ERROR": event.error or "",
        **({"QUEUECTL_EVENT_BATCH": event.batch} if event.batch is not None else {}),
    }
    return job
