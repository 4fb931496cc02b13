"""Output: JSON for --json, readable tables otherwise (rich, imported only when a table is drawn).

Every string a user gave (commands, ids, names, errors) is drawn as text, never as rich
markup, with control characters made visible; times are local with the zone named.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from queuectl.durations import local_text, parse_iso
from queuectl.models import Job
from queuectl.store import Attempt
from queuectl.usage import size_name

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

#: Each state's word where columns of counts must be narrow (`queue list` at 80 columns).
SHORT_STATES = {
    "pending": "pend",
    "processing": "run",
    "completed": "done",
    "failed": "fail",
    "dead": "dead",
    "cancelled": "canc",
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
    return local_text(value if isinstance(value, int) else parse_iso(value))


def short_time(value: str | int | None) -> str:
    """The same instant for a narrow column, its zone named in the header (`zone_name`):
    `03:12:05` today, `11-28 03:12` another day."""
    moment = _local(value)
    if moment is None:
        return "-"
    if moment.date() == datetime.now().astimezone().date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M")


def zone_name() -> str:
    return datetime.now().astimezone().strftime("%Z")


def local_zone() -> str:
    """This host's time zone as a --tz value: TZ, else /etc/localtime's name, else its
    abbreviation."""
    import os

    named = os.environ.get("TZ", "").lstrip(":")
    if not named:
        try:
            named = os.readlink("/etc/localtime").split("zoneinfo/", 1)[1]
        except (OSError, IndexError):
            named = zone_name()
    return named


def _local(value: str | int | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return datetime.fromtimestamp(value / 1000).astimezone()
    return datetime.fromisoformat(value).astimezone()


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


def short_state_text(state: str) -> Any:
    """A state's short word for a narrow header, in the state's colour."""
    from rich.text import Text

    return Text(SHORT_STATES.get(state, state), style=STATE_STYLES.get(state, ""))


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def json_or_empty(items: Collection[Any], as_json: bool, empty: str) -> bool:
    """What a listing prints before its table: with --json the whole list; for an empty list
    the line `empty` on stderr. True when that was all there is to print."""
    if as_json:
        print_json(items)
        return True
    if not items:
        print(empty, file=sys.stderr)
        return True
    return False


def print_listing(
    items: Collection[Any],
    as_json: bool,
    empty: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    elastic: Sequence[str] = (),
    wrap: Sequence[str] = (),
) -> None:
    """A listing: with --json the whole list (or object); when it is empty the line `empty`
    on stderr; else the table of `rows`, a row an item."""
    if not json_or_empty(items, as_json, empty):
        print_table(None, columns, rows, elastic=elastic, wrap=wrap)


def cell(value: Any) -> Any:
    """A table cell: rich Text as given, anything else as plain text with controls visible."""
    from rich.text import Text

    if isinstance(value, Text):
        return value
    return Text("" if value is None else one_line(str(value)))


#: Trailing blanks of a drawn line, before any closing style codes.
_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")


def emit(drawn: Any, *renderables: Any) -> None:
    """Print through `drawn` with no trailing blanks on any line (rich pads every cell)."""
    with drawn.capture() as captured:
        drawn.print(*renderables)
    lines = captured.get().split("\n")
    sys.stdout.write("\n".join(_TRAILING.sub(r"\1", line) for line in lines))
    sys.stdout.flush()


def print_table(
    title: str | None,
    columns: Sequence[str | Any],
    rows: Sequence[Sequence[Any]],
    elastic: Sequence[str] = (),
    droppable: Sequence[str] = (),
    wrap: Sequence[str] = (),
    short: Mapping[str, tuple[Any, Sequence[Any]]] | None = None,
) -> None:
    """A borderless table: `elastic` columns are cut with an ellipsis to fit, `wrap` ones fold
    onto more lines (never cut); on a terminal too narrow for them every `short` column takes
    its short header and cells, then the `droppable` ones (in that order) are left out."""
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    names = [column.plain if isinstance(column, Text) else str(column) for column in columns]
    headers: list[Any] = list(columns)
    cells = [[cell(value) for value in row] for row in rows]

    def width(n: int) -> int:
        header = cell(headers[n]).plain
        return max([cell_len(header), *(cell_len(row[n].plain) for row in cells)])

    drawn = console()
    shown = list(range(len(names)))

    def needed() -> int:
        total = 0
        for n in shown:
            if names[n] in elastic:
                total += min(width(n), 8)
            elif names[n] in wrap:
                longest = max([1, *(cell_len(w) for row in cells for w in row[n].plain.split())])
                total += min(width(n), max(12, longest))
            else:
                total += width(n)
        return total + 2 * (len(shown) - 1)

    for name, (header, texts) in (short or {}).items() if needed() > drawn.width else ():
        n = names.index(name)
        headers[n] = header
        for row, text in zip(cells, texts, strict=True):
            row[n] = cell(text)
    for name in droppable:
        if needed() <= drawn.width:
            break
        shown = [n for n in shown if names[n] != name]
    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for n in shown:
        folds = names[n] in elastic or names[n] in wrap
        table.add_column(
            headers[n], no_wrap=not folds, overflow="fold" if names[n] in wrap else "ellipsis"
        )
    for row in cells:
        for n, text in enumerate(row):
            if names[n] in wrap:
                text.no_wrap, text.overflow = False, "fold"
            else:
                text.no_wrap, text.overflow = True, "ellipsis"
        table.add_row(*(row[n] for n in shown))
    emit(drawn, table)


#: The job table's columns in the order drawn; on a narrow terminal LAST ERROR goes under its
#: row, UPDATED gets short, then PRI, QUEUE and RUNS go. ID, STATE and errors are never cut.
_JOB_COLUMNS = ("ID", "STATE", "QUEUE", "PRI", "RUNS", "COMMAND", "LAST ERROR", "UPDATED")
_COMMAND_MIN = 16
_ERROR_INDENT = 4


def print_jobs(jobs: Sequence[Job], as_json: bool, title: str | None = None) -> None:
    if as_json:
        print_json([job.to_dict() for job in jobs])
        return
    if not jobs:
        print("no jobs", file=sys.stderr)
        return
    from rich.cells import cell_len
    from rich.table import Table
    from rich.text import Text

    rows = [
        {
            "ID": cell(job.id),
            "STATE": state_text(job.state) + (" held" if job.held else ""),
            "COMMAND": _command_cell(job),
            "UPDATED": cell(local_time(job.updated_at_ms)),
            "RUNS": cell(f"{job.attempts}/{job.max_retries + 1}"),
            "QUEUE": cell(job.queue),
            "LAST ERROR": cell(_error_text(job)),
            "PRI": cell(job.priority),
        }
        for job in jobs
    ]
    headers = {name: name for name in _JOB_COLUMNS}
    columns = list(_JOB_COLUMNS)
    reports = [job.progress_dict() for job in jobs]
    if any(reports):  # a column only when a job reported progress
        from queuectl.progress import text as progress_text

        columns.insert(2, "PROGRESS")
        headers["PROGRESS"] = "PROGRESS"
        for row, report in zip(rows, reports, strict=True):
            row["PROGRESS"] = cell(progress_text(report, short=True) if report else "")

    def width(name: str) -> int:
        return max(cell_len(headers[name]), *(cell_len(row[name].plain) for row in rows))

    drawn = console()
    shown = columns

    def fits() -> bool:
        used = sum(min(width(n), _COMMAND_MIN) if n == "COMMAND" else width(n) for n in shown)
        return bool(used + 2 * (len(shown) - 1) <= drawn.width)

    under = not fits()  # the error whole on the lines under its row, not cut in a column
    if under:
        shown.remove("LAST ERROR")
    if not fits():
        headers["UPDATED"] = f"UPDATED {zone_name()}".strip()
        for row, job in zip(rows, jobs, strict=True):
            row["UPDATED"] = cell(short_time(job.updated_at_ms))
    for name in ("PRI", "QUEUE", "RUNS"):
        if not fits():
            shown.remove(name)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in shown:
        # Only COMMAND may shrink (rich collapses wrappable columns first); cut, one line.
        table.add_column(headers[name], no_wrap=name != "COMMAND", overflow="ellipsis")
    for row in rows:
        for text in row.values():
            text.no_wrap, text.overflow = True, "ellipsis"
        table.add_row(*(row[name] for name in shown))
    with drawn.capture() as captured:
        if title:
            drawn.print(Text(title, style="italic"))
        drawn.print(table)
    lines = captured.get().split("\n")
    header = 2 if title else 1  # then one line a job: every cell is one line
    out = lines[:header]
    room = max(20, drawn.width - _ERROR_INDENT)
    for n, job in enumerate(jobs):
        out.append(lines[header + n])
        if under and job.last_error:
            out += [" " * _ERROR_INDENT + line for line in _fold(one_line(_error_text(job)), room)]
    out += lines[header + len(jobs) :]
    sys.stdout.write("\n".join(_TRAILING.sub(r"\1", line) for line in out))
    sys.stdout.flush()


def _error_text(job: Job) -> str | None:
    """The last error; for a failed job waiting for its retry, when that runs."""
    if job.state == "failed" and job.last_error:
        return f"{job.last_error} (next run {short_time(job.run_at_ms)})"
    return job.last_error


def _command_cell(job: Job) -> Any:
    """The command, after a `hook NAME:` mark for a job a hook made."""
    from rich.text import Text

    if job.hook is None:
        return cell(job.command)
    marked = Text(f"hook {one_line(job.hook)}: ", style="italic")
    marked.append(one_line(job.command))
    return marked


def _fold(text: str, room: int) -> list[str]:
    """`text` on lines of at most `room` cells, broken between words where it can be."""
    import textwrap

    return textwrap.wrap(text, room, break_on_hyphens=False) or [""]


@dataclass
class JobFacts:
    """What `show` tells of a job beyond its own fields, read from the queue when it is shown."""

    now_ms: int
    #: Why a job not finished is where it is (`explain`'s sentence), when that is not said
    #: by the other lines.
    why: str | None = None
    #: The state of each job it depends on that is still stored.
    dependencies: dict[str, str] = field(default_factory=dict)
    #: Each dependency with its condition, state and whether met (Queue.conditions).
    conditions: list[dict[str, Any]] = field(default_factory=list)
    #: The kept output of its last attempt: (attempt, bytes kept, bytes dropped before them).
    output: tuple[int, int, int] | None = None


#: The width of the label column of `show`.
_LABEL = 10


def print_job(job: Job, facts: JobFacts) -> None:
    """One job as a person reads it: its state and why, its command, its attempts and times
    (local), and only the settings it has; `show --json` gives every field."""
    from rich.table import Table
    from rich.text import Text

    rows: list[tuple[str, Any]] = [("id", Text(job.id))]
    state = state_text(job.state)
    since = _state_since(job)
    if since is not None:
        state.append(f" since {local_time(since)}")
    if job.held:
        state.append(", held", style="bold")
    rows.append(("state", state))
    if facts.why:
        rows.append(("", Text(visible(facts.why))))
    if job.made_by is not None:
        rows.append(("made by", Text(visible(job.made_by), style="italic")))
    rows.append(("command", Text(visible(job.command, keep_lines=True))))
    rows.append(("queue", Text(f"{visible(job.queue)}, priority {job.priority}")))
    tries = f"{job.attempts} of {job.max_retries + 1}"
    if job.no_retry_exit_codes:
        codes = ", ".join(str(code) for code in job.no_retry_exit_codes)
        tries += f"; exit {codes} not retried"
    rows.append(("attempts", Text(tries)))
    report = job.progress_dict()
    if report is not None:
        from queuectl.progress import text as progress_text

        rows.append(("progress", Text(visible(progress_text(report)))))
    if job.timeout is not None:
        rows.append(("timeout", Text(_span(round(job.timeout * 1000)))))
    if job.last_error:
        rows.append(("last error", Text(visible(job.last_error))))
    if job.state == "failed" and job.run_at_ms > facts.now_ms:
        wait = _span(max(1, round((job.run_at_ms - facts.now_ms) / 1000)) * 1000)
        rows.append(("next retry", Text(f"{local_time(job.run_at_ms)} (in {wait})")))
    elif job.run_at_ms != job.created_at_ms:
        rows.append(("run at", Text(local_time(job.run_at_ms))))
    rows.append(("created", Text(local_time(job.created_at_ms))))
    if job.started_at_ms is not None:
        rows.append(("started", Text(local_time(job.started_at_ms))))
    if job.finished_at_ms is not None:
        took = "" if job.duration_ms is None else f", took {_span(job.duration_ms)}"
        rows.append(("finished", Text(local_time(job.finished_at_ms) + took)))
    if facts.conditions:
        # A plain --after reads as it always did: its state says whether it is met.
        after = ", ".join(
            f"{w['id']} ({w['state']})"
            if "id" in w and w["on"] == "completed"
            else f"{w.get('id') or 'batch ' + w['batch']} ({w['state']}; on {w['on']}: "
            f"{'met' if w['met'] else 'not met' if w['met'] is False else 'waiting'})"
            for w in facts.conditions
        )
        rows.append(("after", Text(visible(after))))
    if job.expires_at_ms is not None:
        rows.append(("expires", Text(f"{local_time(job.expires_at_ms)} if not started by then")))
    if job.edits:
        last = job.edits[-1]
        fields = ", ".join(last.get("fields", []))
        said = f"by {last.get('by')} at {last.get('at')} ({fields})"
        times = f"{len(job.edits)} times, last " if len(job.edits) > 1 else ""
        rows.append(("edited", Text(visible(times + said))))
    if job.unique_key is not None:
        rows.append(("unique key", Text(visible(job.unique_key))))
    if job.lock is not None:
        rows.append(("lock", Text(visible(job.lock))))
    if job.requires:
        rows.append(("requires", Text(visible(", ".join(job.requires)))))
    if job.silence_timeout is not None:
        rows.append(
            (
                "silence",
                Text(f"killed after {_span(round(job.silence_timeout * 1000))} without output"),
            )
        )
    limits = [f"cpus {job.cpus:g}"] if job.cpus is not None else []
    if job.memory is not None:
        limits.insert(0, f"memory {size_name(job.memory)}")
    if job.max_procs is not None:
        limits.append(f"max_procs {job.max_procs}")
    if limits:
        rows.append(("limits", Text(", ".join(limits))))
    if job.state == "processing" and job.lease_owner is not None:
        rows.append(("runner", Text(visible(job.lease_owner))))
    rows.append(("cwd", Text(visible(job.cwd))))
    if job.env:
        rows.append(("env", Text(visible(" ".join(sorted(job.env))) + " (values: --json)")))
    if facts.output is not None:
        rows.append(("output", Text(_output_text(job.id, *facts.output))))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, min_width=_LABEL)
    grid.add_column(overflow="fold")
    for label, value in rows:
        value.overflow = "fold"
        grid.add_row(Text(label, style="bold"), value)
    emit(console(), grid)


def _state_since(job: Job) -> int | None:
    """When the job came to its state, where that is known."""
    if job.state == "processing":
        return job.started_at_ms
    if job.state in ("completed", "dead", "cancelled", "failed"):
        return job.finished_at_ms or job.updated_at_ms
    return None


def _output_text(job_id: str, attempt: int, kept: int, dropped: int) -> str:
    if not kept and not dropped:
        return f"none from attempt {attempt}"
    size = _bytes(kept)
    if dropped:
        size += f" (the last of {_bytes(kept + dropped)})"
    return f"{size} from attempt {attempt}: queuectl logs {job_id}"


def _bytes(count: int) -> str:
    if count < 1000:
        return f"{count} byte{'s' if count != 1 else ''}"
    kilo = count < 1_000_000
    return f"{count / 1000:.1f} kB" if kilo else f"{count / 1_000_000:.1f} MB"


def _span(ms: int) -> str:
    """A duration as a person says it: `0.412s`, `42s`, `1m30s`, `5m`, `2h05m`, `3d4h`."""
    if ms < 10_000:
        return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    seconds = round(ms / 1000)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s" if seconds else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    if not hours:
        return f"{days}d"
    return f"{days}d{hours}h"


def size_text(count: int | None) -> str:
    """`213.4 MiB`: a number of bytes in the largest unit under which it stays 1 or more."""
    if count is None:
        return "-"
    value, unit = float(count), "B"
    for larger in ("KiB", "MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, larger
    return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"


def print_history(attempts: Sequence[Attempt]) -> None:
    """A job's attempts as a table under it (nothing when it has not run): errors whole, times
    short with the zone in the header where the terminal is narrow."""
    if not attempts:
        return
    print()
    rows = [
        [
            attempt.attempt,
            local_time(attempt.started_at_ms),
            "running" if attempt.finished_at_ms is None else local_time(attempt.finished_at_ms),
            "-" if attempt.duration_ms is None else f"{attempt.duration_ms / 1000:.3f}s",
            "-" if attempt.cpu_ms is None else f"{attempt.cpu_ms / 1000:.3f}s",
            size_text(attempt.max_rss_bytes),
            "-" if attempt.exit_code is None else attempt.exit_code,
            attempt.error or "",
            attempt.host or "",
            attempt.runner or "",
        ]
        for attempt in attempts
    ]
    zone = zone_name()
    short = {
        "STARTED": (
            f"STARTED {zone}".strip(),
            [short_time(attempt.started_at_ms) for attempt in attempts],
        ),
        "FINISHED": (
            f"FINISHED {zone}".strip(),
            [
                "running" if attempt.finished_at_ms is None else short_time(attempt.finished_at_ms)
                for attempt in attempts
            ],
        ),
    }
    print_table(
        "attempts",
        ["#", "STARTED", "FINISHED", "TOOK", "CPU", "PEAK", "EXIT", "ERROR", "HOST", "RUNNER"],
        rows,
        elastic=("RUNNER",),
        wrap=("ERROR",),
        droppable=("RUNNER", "HOST", "FINISHED", "PEAK", "CPU"),
        short=short,
    )
