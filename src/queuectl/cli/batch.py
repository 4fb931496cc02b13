"""Batches: list them, show one's progress and jobs, set its concurrency limit, wait for it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import click

from queuectl.cli import Group, Session
from queuectl.cli.params import limit_option

if TYPE_CHECKING:
    from queuectl.queue import Queue

POLL_S = 0.2


@click.group(cls=Group)
def batch() -> None:
    """Batches: jobs enqueued with --batch NAME, or an --array."""


def _progress(got: dict[str, Any]) -> str:
    return f"{got['done']}/{got['total']}"


def _eta(got: dict[str, Any]) -> str:
    if got["eta_s"] is None:
        return "-"
    seconds = int(got["eta_s"])
    return (
        f"{seconds // 3600}h{seconds // 60 % 60:02d}m"
        if seconds >= 3600
        else (f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s")
    )


def _state(got: dict[str, Any]) -> str:
    if not got["finished"]:
        return "running" if got["first_start"] else "waiting"
    return "completed" if got["completed"] else "finished"


@batch.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of batches.")
@click.pass_obj
def batch_list(session: Session, as_json: bool) -> None:
    """Every batch, oldest first, with its progress."""
    from queuectl.cli.render import json_or_empty, local_time, print_table

    found = session.existing_queue.batches()
    if json_or_empty(found, as_json, "no batch yet"):
        return
    print_table(
        None,
        ["NAME", "STATE", "DONE", "DEAD", "CANCELLED", "LIMIT", "ETA", "CREATED"],
        [
            [
                got["name"],
                _state(got),
                _progress(got),
                got["counts"]["dead"],
                got["counts"]["cancelled"],
                "-" if got["concurrency"] is None else got["concurrency"],
                _eta(got),
                local_time(got["created_at"]),
            ]
            for got in found
        ],
        elastic=["NAME"],
    )


@batch.command("show")
@click.argument("name")
@limit_option(50, "Show at most this many of its jobs (0 = all).")
@click.option("--json", "as_json", is_flag=True, help="Print the batch and its jobs as JSON.")
@click.pass_obj
def batch_show(session: Session, name: str, limit: int, as_json: bool) -> None:
    """A batch's counts by state, done/total, first start, last end, ETA, and its jobs."""
    from queuectl.cli.render import local_time, print_jobs, print_json

    queue = session.existing_queue
    got = queue.batch(name)
    jobs = queue.list(batch=name, limit=limit or None)
    if as_json:
        print_json({**got, "jobs": [job.to_dict() for job in jobs]})
        return
    counts = ", ".join(f"{n} {state}" for state, n in got["counts"].items() if n)
    limit_text = "none" if got["concurrency"] is None else str(got["concurrency"])
    lines = [
        f"batch {got['name']}: {_state(got)}, {_progress(got)} done ({counts or 'no jobs'})",
        f"  concurrency limit: {limit_text}",
        f"  created:     {local_time(got['created_at'])}",
        f"  first start: {local_time(got['first_start']) if got['first_start'] else '-'}",
        f"  last end:    {local_time(got['last_end']) if got['last_end'] else '-'}",
    ]
    if not got["finished"]:
        lines.append(f"  ETA:         {_eta(got)}")
    click.echo("\n".join(lines))
    print_jobs(jobs, False, f"jobs of batch {name}")


@batch.command("set")
@click.argument("name")
@click.option(
    "--concurrency",
    required=True,
    metavar="N|none",
    help="At most N of its jobs processing at once, across hosts; none: no limit.",
)
@click.pass_obj
def batch_set(session: Session, name: str, concurrency: str) -> None:
    """Change a batch's concurrency limit."""
    session.existing_queue.set_batch(name, concurrency)


def wait_batch(queue: Queue, name: str, timeout: str | None) -> int:
    """Block until every job of the batch is finished: 0 if all completed, 1 if any ended dead
    or cancelled, 124 on timeout. Each look reads the batch's counters only."""
    from queuectl.durations import parse_duration

    limit_s = None if timeout is None else parse_duration(timeout, "--timeout")
    started = time.monotonic()
    while True:
        got = queue.batch(name)  # an unknown batch is an error before any waiting
        if got["finished"]:
            break
        if limit_s is not None and time.monotonic() - started >= limit_s:
            click.echo(
                f"error: timed out after {timeout}: batch {name} has "
                f"{got['total'] - got['done']} job(s) not finished",
                err=True,
            )
            return 124
        time.sleep(POLL_S)
    if got["completed"]:
        click.echo(f"batch {name}: all {got['total']} completed", err=True)
        return 0
    counts = got["counts"]
    click.echo(
        f"batch {name} finished: {counts['completed']} completed, {counts['dead']} dead, "
        f"{counts['cancelled']} cancelled",
        err=True,
    )
    return 1


__all__ = ["batch", "wait_batch"]
