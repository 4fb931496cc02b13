"""Output: JSON for --json, readable tables otherwise (rich, imported only when a table is drawn)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from queuectl.models import Job


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def print_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold", pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if cell is None else str(cell) for cell in row))
    # Piped output keeps whole rows rather than wrapping at 80 columns.
    Console(width=None if sys.stdout.isatty() else 240).print(table)


def short(text: str | None, width: int = 48) -> str:
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def print_jobs(jobs: Sequence[Job], as_json: bool, title: str | None = None) -> None:
    if as_json:
        print_json([job.to_dict() for job in jobs])
        return
    if not jobs:
        print("no jobs", file=sys.stderr)
        return
    rows = [
        (
            job.id, job.state, job.queue, job.priority, f"{job.attempts}/{job.max_retries + 1}",
            short(job.command), short(job.last_error, 28),
            job.to_dict()["updated_at"][:19].replace("T", " "),
        )
        for job in jobs
    ]  # fmt: skip
    print_table(
        title, ("ID", "STATE", "QUEUE", "PRI", "RUNS", "COMMAND", "LAST ERROR", "UPDATED"), rows
    )


def print_job(job: Job) -> None:
    fields = job.to_dict()
    width = max(len(key) for key in fields)
    for key, value in fields.items():
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value
        print(f"{key:<{width}}  {'-' if shown is None else shown}")
