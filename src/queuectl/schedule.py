"""Periodic schedules: validation and the arithmetic of their slots (cron through croniter).

A schedule fires once per slot however many runners are up: the slot is claimed in the
store's transaction, and the job's id is derived from the slot so a second insert cannot
happen. A slot missed while no runner was up fires once, late; the next slot is the first
one after now.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from queuectl.durations import parse_duration
from queuectl.errors import InvalidInputError
from queuectl.models import new_job, validate_id

MAX_NAME = 100


def validate_schedule(
    name: str, cron: str | None, every: str | float | None, tz: str | None, job: dict[str, Any]
) -> tuple[str, str | None, float | None, str | None, dict[str, Any]]:
    """Checked (name, cron, every_s, tz, job template); the template keeps the adder's cwd."""
    validate_id(name, "schedule name")
    if len(name) > MAX_NAME:
        raise InvalidInputError(f"schedule name: at most {MAX_NAME} characters")
    if (cron is None) == (every is None):
        raise InvalidInputError("give exactly one of --cron EXPR or --every DURATION")
    every_s = None
    if every is not None:
        every_s = parse_duration(every, "--every")
        if every_s < 1:
            raise InvalidInputError("--every: must be at least 1s")
    if tz is not None and cron is None:
        raise InvalidInputError("--tz applies to --cron only")
    if cron is not None:
        if len(cron.split()) != 5:
            raise InvalidInputError(
                f"--cron: {cron!r} must have 5 fields (minute hour day month weekday)"
            )
        _zone(tz)
        from croniter import croniter  # type: ignore[import-untyped]

        if not croniter.is_valid(cron):
            raise InvalidInputError(f"--cron: {cron!r} is not a valid cron expression")
    if "id" in job:
        raise InvalidInputError("a scheduled job cannot have an id: each run gets '<name>.<slot>'")
    checked = new_job(job)
    template = {key: value for key, value in job.items() if value is not None}
    template["cwd"] = checked.cwd
    return name, cron, every_s, tz, template


def _zone(tz: str | None) -> Any:
    if tz is None:
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError(f"--tz: unknown time zone {tz!r}") from None


def next_slot_ms(
    cron: str | None, every_s: float | None, tz: str | None, anchor_ms: int, after_ms: int
) -> int:
    """The first slot strictly after `after_ms`; `every` slots are anchor + k * every."""
    if every_s is not None:
        step = round(every_s * 1000)
        if after_ms < anchor_ms:
            return anchor_ms
        return anchor_ms + ((after_ms - anchor_ms) // step + 1) * step
    from croniter import croniter

    start = datetime.fromtimestamp(after_ms / 1000, tz=UTC).astimezone(_zone(tz))
    following: datetime = croniter(cron, start).get_next(datetime)
    return round(following.timestamp() * 1000)
