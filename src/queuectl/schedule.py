"""Periodic schedules: validation and the arithmetic of their slots (cron through croniter).

A schedule fires once per slot however many runners are up: the slot is claimed in the
store's transaction, and the job's id is derived from the slot so a second insert cannot
happen. A slot missed while no runner was up fires once, late; the next slot is the first
one after now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from queuectl.durations import parse_duration
from queuectl.errors import InvalidInputError
from queuectl.models import new_job, validate_id

MAX_NAME = 100
#: The cron nicknames croniter understands; each names a 5-field expression.
NICKNAMES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
        if cron.startswith("@"):
            if cron not in NICKNAMES:
                raise InvalidInputError(f"--cron: {cron!r} is not one of {', '.join(NICKNAMES)}")
        elif len(cron.split()) != 5:
            raise InvalidInputError(
                f"--cron: {cron!r} must have 5 fields (minute hour day month weekday) "
                f"or be one of {', '.join(NICKNAMES)}"
            )
        _zone(tz)
        from croniter import croniter  # type: ignore[import-untyped]

        if not croniter.is_valid(cron):
            raise InvalidInputError(f"--cron: {cron!r} is not a valid cron expression")
        from croniter import CroniterBadDateError

        try:
            croniter(cron, datetime.now(_zone(tz))).get_next(datetime)
        except CroniterBadDateError:
            raise InvalidInputError(
                f"--cron: {cron!r} matches no date that ever comes (such as February 30)"
            ) from None
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


def slot_job_id(name: str, at_ms: int) -> str:
    """The id of the job a schedule enqueues for its slot at `at_ms`: `poll.20261129T0130Z`.

    Readable UTC, as precise as the slot needs (seconds, then milliseconds, only when not
    zero), so two slots of one schedule never share an id.
    """
    moment = _EPOCH + timedelta(milliseconds=at_ms)
    stamp = moment.strftime("%Y%m%dT%H%M")
    if moment.second or moment.microsecond:
        stamp += moment.strftime("%S")
    if moment.microsecond:
        stamp += f".{moment.microsecond // 1000:03d}"
    return f"{name}.{stamp}Z"


def describe_every(every_s: float) -> str:
    """An interval as the user would write it: `every 1h`, `every 90s`, `every 1500ms`."""
    ms = round(every_s * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"every {ms // size}{unit}"
    return f"every {ms}ms"
