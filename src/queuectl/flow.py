"""Flow control values: a queue's concurrency and rate as given and as shown, and
when a sliding rate window next lets an attempt start. Pure: no I/O, no clock."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from queuectl.durations import parse_duration
from queuectl.errors import InvalidInputError

MAX_LIMIT = 1_000_000  # more is surely a typo (and no host runs that many at once)
# ASCII digits only, as for concurrency: int() would take a fullwidth "5" (U+FF15) for 5.
_RATE = re.compile(r"\s*([0-9]+)\s*/\s*(\S+)\s*")
_NONE = ("none", "")


def parse_concurrency(value: object) -> int | None:
    """At most this many jobs of the queue run at once; None (or "none"): no limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"concurrency: expected a whole number or none, got {value!r}")
    if not 1 <= value <= MAX_LIMIT:
        raise InvalidInputError(f"concurrency: must be between 1 and {MAX_LIMIT}, got {value}")
    return value


def parse_rate(value: object) -> tuple[int, int] | None:
    """(jobs, window ms) from "N/DURATION" (10/1m) or {"jobs": N, "seconds": S}; None (or
    "none"): no limit."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
        return None
    if isinstance(value, dict) and set(value) == {"jobs", "seconds"}:
        jobs, window = value["jobs"], value["seconds"]
    elif isinstance(value, str) and (match := _RATE.fullmatch(value)):
        jobs, window = int(match.group(1)), match.group(2)
    else:
        raise InvalidInputError(f"rate: expected N/DURATION (10/1m, 5/30s) or none, got {value!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_LIMIT:
        raise InvalidInputError(
            f"rate: the number of jobs must be between 1 and {MAX_LIMIT}, got {jobs!r}"
        )
    if isinstance(window, bool) or not isinstance(window, str | int | float):
        raise InvalidInputError(f"rate: expected a duration after the slash, got {window!r}")
    window_ms = round(parse_duration(window, "rate") * 1000)
    if window_ms < 1:
        raise InvalidInputError("rate: the window must be at least 1ms")
    return jobs, window_ms


def rate_json(jobs: int | None, window_ms: int | None) -> dict[str, Any] | None:
    """The rate as `queue list --json` shows it: {"jobs": N, "seconds": S}."""
    if jobs is None or window_ms is None:
        return None
    seconds = window_ms / 1000
    return {"jobs": jobs, "seconds": int(seconds) if seconds.is_integer() else seconds}


def window_opens_at(starts: Sequence[int], jobs: int, window_ms: int) -> int | None:
    """When a window holding `starts` (ascending instants) next lets one more start: None if
    it has room now. A start at s counts while the instant is before s + window_ms."""
    if len(starts) < jobs:
        return None
    return starts[len(starts) - jobs] + window_ms
