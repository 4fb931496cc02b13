"""A job's progress reports: `DONE/TOTAL [MESSAGE]` or `P% [MESSAGE]`, parsed one way for the
`progress` command and for the file a runner reads."""

from __future__ import annotations

import math
import re
from typing import Any

from queuectl.errors import InvalidInputError
from queuectl.exits import printable

#: What a runner gives each attempt so that `queuectl progress` finds its attempt: the claim
#: token (never repeated for a job, unlike the attempt number) and the file it reads reports from.
CLAIM_ENV = "QUEUECTL_CLAIM_TOKEN"
FILE_ENV = "QUEUECTL_PROGRESS_FILE"
MAX_MESSAGE = 200  # characters kept of a report's message
_NUMBER = r"(\d+(?:\.\d+)?)"
_FRACTION = re.compile(rf"{_NUMBER}\s*/\s*{_NUMBER}")
_PERCENT = re.compile(rf"{_NUMBER}\s*%")

Report = tuple[float, float, str | None]


def parse(text: str) -> Report:
    """(done, total, message) of a report; a percentage is done out of 100."""
    head, _, message = text.strip().partition(" ")
    if match := _FRACTION.fullmatch(head):
        done, total = float(match[1]), float(match[2])
        if total <= 0:
            raise InvalidInputError(f"progress: the total must be more than 0, got {head!r}")
    elif match := _PERCENT.fullmatch(head):
        done, total = float(match[1]), 100.0
    else:
        raise InvalidInputError(f"progress: expected DONE/TOTAL or P%, got {head!r}")
    if not math.isfinite(done) or not math.isfinite(total) or done > total:
        raise InvalidInputError(f"progress: done must be between 0 and the total, got {head!r}")
    text = printable(message)[:MAX_MESSAGE]
    return done, total, text or None


def number(value: float) -> float | int:
    """A count as JSON shows it: 3, not 3.0."""
    return int(value) if float(value).is_integer() else value


def text(report: dict[str, Any], short: bool = False) -> str:
    """A job's progress (its JSON) as a person reads it: `3/8 (37.5%) copying, ETA 12s`, or
    `37.5% 12s` in a table's cell."""
    percent, eta_s = report["percent"], report["eta_s"]
    shown = f"{percent:g}%" if percent is not None else f"{report['done']:g}"
    if short:
        return shown if eta_s is None else f"{shown} {_span(eta_s)}"
    if report["total"] != 100:
        shown = f"{report['done']:g}/{report['total']:g} ({shown})"
    if report["message"]:
        shown += f" {report['message']}"
    return shown if eta_s is None else f"{shown}, ETA {_span(eta_s)}"


def _span(seconds: float) -> str:
    if seconds < 100:
        return f"{seconds:.0f}s"
    if seconds < 6000:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
