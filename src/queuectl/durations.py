"""Durations ("500ms", "30s", "5m", "2h", "7d") and ISO-8601 UTC timestamps, in one place."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from queuectl.errors import InvalidInputError

#: Longer is surely a typo, and would overflow the stored instants (run_at, leases).
MAX_DURATION_S = 100 * 366 * 86400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: The longer spellings people type (`10min`, `2hours`), each as its short unit.
_SPELLED = {
    **dict.fromkeys(("msec", "msecs", "millisecond", "milliseconds"), "ms"),
    **dict.fromkeys(("sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("day", "days"), "d"),
}
_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_DURATION = re.compile(rf"\s*{_NUMBER}\s*([a-z]+)?\s*", re.IGNORECASE)
#: A sum of parts each with its unit: `1h30m`, `2m 30s`.
_PARTS = re.compile(rf"(?:\s*{_NUMBER}\s*[a-z]+\s*)+", re.IGNORECASE)
_PART = re.compile(rf"{_NUMBER}\s*([a-z]+)", re.IGNORECASE)


def _unit(word: str | None) -> str | None:
    if word is None:
        return "s"
    return word if word in _UNITS else _SPELLED.get(word.lower())


def parse_duration(value: str | float | int, what: str = "duration") -> float:
    """Seconds from plain seconds or a number with a unit suffix; refuses negatives and junk."""
    if isinstance(value, bool):
        raise InvalidInputError(f"{what}: expected a duration, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        text = str(value)
        match = _DURATION.fullmatch(text)
        if match:
            parts = [(match.group(1), _unit(match.group(2)))]
        elif _PARTS.fullmatch(text):
            parts = [(number, _unit(word)) for number, word in _PART.findall(text)]
        else:
            parts = []
        if not parts or any(unit is None for _, unit in parts):
            raise InvalidInputError(
                f"{what}: {value!r} is not a duration (use seconds or 500ms, 30s, 5m, 2h, 7d)"
            )
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts if unit)
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidInputError(f"{what}: must be a finite number of seconds >= 0, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise InvalidInputError(f"{what}: must be at most 100 years, got {value!r}")
    return seconds


def now_ms() -> int:
    """The current time in epoch milliseconds."""
    import time

    return time.time_ns() // 1_000_000


def ms_to_iso(ms: int | None) -> str | None:
    """Epoch milliseconds as `2026-11-27T22:33:28.123Z`."""
    if ms is None:
        return None
    # Integer arithmetic: no float rounding, and years before 1000 keep their four digits.
    moment = _EPOCH + timedelta(milliseconds=ms)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_text(ms: int | None) -> str:
    """Epoch milliseconds as this host's local time, its zone named: `2026-11-29 03:12:05 CET`;
    the one clock every human-readable view shows."""
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def parse_iso(value: str, what: str = "time", naive_is_local: bool = False) -> int:
    """Epoch milliseconds from an ISO-8601 time; a time without an offset is taken as UTC (the
    JSON format's rule), or as this host's local time with `naive_is_local` (what a person
    types on the command line, as `at` and cron read it)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what}: expected an ISO-8601 time, got {value!r}")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"{what}: {value!r} is not an ISO-8601 time (e.g. 2026-11-27T22:33:28Z)"
        ) from None
    try:
        if moment.tzinfo is None:
            moment = moment.astimezone() if naive_is_local else moment.replace(tzinfo=UTC)
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError, OSError):
        raise InvalidInputError(f"{what}: {value!r} is out of range in UTC") from None
    return (moment - _EPOCH) // timedelta(milliseconds=1)
