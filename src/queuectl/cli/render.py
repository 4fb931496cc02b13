"""Output: JSON for --json, readable tables otherwise (rich, imported only when a table is drawn).

Every string a user gave (commands, ids, names, errors) is drawn as text, never as rich
markup, with control characters made visible; times are local with the zone named.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from queuectl.models import Job
from queuectl.store import Attempt

#: The colour of each state, wherever a state is drawn.
STATE_STYLES = {
    "pending": "",
    "processing": "cyan",
    "running": "cyan",
    "completed": "green",
    "failed": "yellow",
    "dead": "red",
    "cancelled": "magenta",
    "up": "green",
    "stopping": "yellow",  # a runner asked to stop: it drains and takes no new job
}

#: C0 and C1 controls, DEL, and the bidirectional overrides that can disguise a command.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str, keep_lines: bool = False) -> str:
    """Control characters as `\\x1b`-style escapes; newlines and tabs too unless kept."""

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    shown = _CONTROL.sub(escape, text)
    if not keep_lines:
        shown = shown.replace("\t", "\\t").replace("\n", "\\n")
    return shown


def one_line(text: str | None) -> str:
    """A string for one table cell: whitespace runs collapsed, controls visible."""
    return visible(" ".join(text.split())) if text else ""


def local_time(value: str | int | None) -> str:
    """An ISO-8601 UTC time (or epoch ms) in the local zone, named: `2026-11-29 03:12:05 CET`."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int):
        moment = datetime.fromtimestamp(value / 1000).astimezone()
    else:
        moment = datetime.fromisoformat(value).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z")


def console(stderr: bool = False) -> Any:
    """A rich console: colour only on a terminal and without NO_COLOR; no guessed highlights."""
    from rich.console import Console

    drawn = Console(highlight=False, stderr=stderr)
    if not drawn.is_terminal:
        drawn = Console(highlight=False, stderr=stderr, width=240)  # pipes keep whole rows
    return drawn


def state_text(state: str) -> Any:
    from rich.text import Text

    return Text(state, style=STATE_STYLES.get(state, ""))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def cell(value: Any) -> Any:
    """A table cell: rich Text as given, anything else as plain text with controls visible."""
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return Text("" if value is None else one_line(str(value)))


def print_table(
    title: str | None,
    columns: Sequence[str | Any],
    rows: Sequence[Sequence[Any]],
    elastic: Sequence[str] = (),
    droppable: Sequence[str] = (),
) -> None:
    """A borderless table of one-line rows: `elastic` columns are cut with an ellipsis to fit,
    `droppable` ones (in that order) are left out on a terminal too narrow for them."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    names = [column.plain if isinstance(column, Text) else str(column) for column in columns]
    cells = [[cell(value) for value in row] for row in rows]
    widths = [
        max([cell_len(name), *(cell_len(row[n].plain) for row in cells)])
        for n, name in enumerate(names)
    ]
    drawn = console()
    shown = list(range(len(names)))

    def needed() -> int:
        return sum(min(widths[n], 8) if names[n] in elastic else widths[n] for n in shown) + (
            2 * (len(shown) - 1)
        )

    for name in droppable:
        if needed() <= drawn.width:
            break
        shown = [n for n in shown if names[n] != name]
    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for n in shown:
        table.add_column(columns[n], no_wrap=names[n] not in elastic, overflow="ellipsis")
    for row in cells:
        for text in row:
            text.no_wrap, text.overflow = True, "ellipsis"
        table.add_row(*(row[n] for n in shown))
    drawn.print(table)


#: The job table's columns, most important first: on a narrow terminal the last ones go.
_JOB_COLUMNS = ("ID", "STATE", "COMMAND", "UPDATED", "RUNS", "QUEUE", "LAST ERROR", "PRI")
_ELASTIC_MIN = {"COMMAND": 16, "LAST ERROR": 12}


def _fit_columns(widths: dict[str, int], room: int) -> list[str]:
    """The columns that fit in `room` cells, keeping the most important (elastic at minimum)."""
    kept: list[str] = []
    used = 0
    for name in _JOB_COLUMNS:
        need = min(widths[name], _ELASTIC_MIN.get(name, widths[name])) + (2 if kept else 0)
        if len(kept) >= 3 and used + need > room:
            break
        kept.append(name)
        used += need
    return kept


def print_jobs(jobs: Sequence[Job], as_json: bool, title: str | None = None) -> None:
    if as_json:
        print_json([job.to_dict() for job in jobs])
        return
    if not jobs:
        print("no jobs", file=sys.stderr)
        return
    from rich.cells import cell_len
    from rich.table import Table

    rows = [
        {
            "ID": cell(job.id),
            "STATE": state_text(job.state),
            "COMMAND": cell(job.command),
            "UPDATED": cell(local_time(job.updated_at_ms)),
            "RUNS": cell(f"{job.attempts}/{job.max_retries + 1}"),
            "QUEUE": cell(job.queue),
            "LAST ERROR": cell(job.last_error),
            "PRI": cell(job.priority),
        }
        for job in jobs
    ]
    widths = {
        name: max(cell_len(name), *(cell_len(row[name].plain) for row in rows))
        for name in _JOB_COLUMNS
    }
    drawn = console()
    kept = _fit_columns(widths, drawn.width)
    order = ("ID", "STATE", "QUEUE", "PRI", "RUNS", "COMMAND", "LAST ERROR", "UPDATED")
    shown = [name for name in order if name in kept]
    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for name in shown:
        # Only the elastic columns may shrink (rich collapses wrappable columns first); their
        # cells are one line each, cut with an ellipsis.
        table.add_column(name, no_wrap=name not in _ELASTIC_MIN, overflow="ellipsis")
    for row in rows:
        for name in _ELASTIC_MIN:
            row[name].no_wrap = True
            row[name].overflow = "ellipsis"
        table.add_row(*(row[name] for name in shown))
    drawn.print(table)


def print_job(job: Job) -> None:
    """Every field of one job, one a line; times local, the command's controls visible."""
    from rich.text import Text

    fields = job.to_dict()
    width = max(len(key) for key in fields)
    drawn = console()
    for key, value in fields.items():
        line = Text(f"{key:<{width}}  ")
        if key == "state":
            line.append_text(state_text(value))
        elif key.endswith("_at"):
            line.append(local_time(value))
        elif value is None:
            line.append("-")
        elif isinstance(value, list | dict):
            line.append(visible(json.dumps(value, ensure_ascii=False)))
        else:
            indent = "\n" + " " * (width + 2)
            line.append(visible(str(value), keep_lines=True).replace("\n", indent))
        drawn.print(line, soft_wrap=True)


def print_history(attempts: Sequence[Attempt]) -> None:
    """A job's attempts as a table under it (nothing when it has not run)."""
    if not attempts:
        return
    print()
    rows = [
        [
            attempt.attempt,
            local_time(attempt.started_at_ms),
            "running" if attempt.finished_at_ms is None else local_time(attempt.finished_at_ms),
            "-" if attempt.duration_ms is None else f"{attempt.duration_ms / 1000:.3f}s",
            "-" if attempt.exit_code is None else attempt.exit_code,
            attempt.error or "",
            attempt.host or "",
            attempt.runner or "",
        ]
        for attempt in attempts
    ]
    print_table(
        "attempts",
        ["#", "STARTED", "FINISHED", "TOOK", "EXIT", "ERROR", "HOST", "RUNNER"],
        rows,
        elastic=("ERROR", "RUNNER"),
        droppable=("RUNNER", "HOST", "FINISHED"),
    )
