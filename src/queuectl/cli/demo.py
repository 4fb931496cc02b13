"""`queuectl demo`: a guided run on a scratch store that shows retries, timeouts and the DLQ."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from queuectl.queue import Queue

DEMO_JOBS: list[dict[str, Any]] = [
    {"id": "hello", "command": "echo hello from queuectl", "priority": 5},
    {"id": "slow", "command": "sleep 1.5 && echo slow job done"},
    {"id": "after-slow", "command": "echo runs only after slow completed", "depends_on": ["slow"]},
    {"id": "flaky", "command": 'echo "attempt $QUEUECTL_ATTEMPT"; [ "$QUEUECTL_ATTEMPT" -ge 2 ]'},
    {"id": "broken", "command": "echo something broke >&2; exit 2"},
    {"id": "hopeless", "command": "echo bad arguments >&2; exit 64", "no_retry_exit_codes": [64]},
    {"id": "too-slow", "command": "sleep 30", "timeout": 1, "max_retries": 0},
    {"id": "batch-1", "command": "sleep 0.5; echo batch 1", "queue": "batch"},
    {"id": "batch-2", "command": "sleep 0.5; echo batch 2", "queue": "batch"},
]


@click.command()
@click.option("--keep", is_flag=True, help="Keep the scratch store and print where it is.")
def demo(keep: bool) -> None:
    """Run a guided demo on a scratch store: jobs succeed, retry, time out and land in the DLQ."""
    from rich.console import Console

    from queuectl.queue import Queue

    console = Console(highlight=False)
    folder = tempfile.mkdtemp(prefix="queuectl-demo-")
    target = os.path.join(folder, "demo.db")
    queue = Queue(target)
    queue.set_config("max_retries", 2)
    queue.set_config("backoff_base", 1.5)  # waits of 1.5 s then 2.25 s, to keep the demo short
    console.print(f"[bold]queuectl demo[/] on a scratch store: {target}")
    console.print("settings: max_retries 2, backoff_base 1.5 (waits 1.5 s, then 2.25 s)\n")
    for job in queue.enqueue_many(DEMO_JOBS):
        console.print(f"  enqueued [cyan]{job.id:<10}[/] {job.command}")
    console.print("\nstarting a runner with 3 workers: [dim]queuectl worker start --count 3[/]\n")
    log_path = os.path.join(folder, "runner.log")
    with open(log_path, "wb") as log:
        runner = subprocess.Popen(
            [sys.executable, "-m", "queuectl", "--db", target, "worker", "start", "--count", "3"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        _watch(console, queue)
    finally:
        runner.terminate()
        runner.wait(timeout=30)
    with open(log_path, encoding="utf-8", errors="replace") as log:
        lines = log.read().splitlines()
    console.print("\n[bold]the runner's log[/] (one line per job event; last 8 lines):")
    for line in lines[-8:]:
        console.print(f"  [dim]{line}[/]", highlight=False)
    _summary(console, queue, keep)
    queue.close()
    if keep:
        console.print(f"\nthe store is kept: [bold]export QUEUECTL_DB={target}[/]")
    else:
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def _watch(console: Console, queue: Queue) -> None:
    """Live table of the jobs until none is pending, running or waiting to retry."""
    from rich.live import Live

    deadline = time.monotonic() + 60
    with Live(_table(queue), console=console, refresh_per_second=8, transient=False) as live:
        while time.monotonic() < deadline:
            counts = queue.status()["counts"]
            live.update(_table(queue))
            if counts["pending"] + counts["processing"] + counts["failed"] == 0:
                break
            time.sleep(0.2)


def _table(queue: Queue) -> Table:
    from rich.table import Table

    colours = {"completed": "green", "dead": "red", "failed": "yellow", "processing": "cyan"}
    table = Table(title="jobs", box=None, header_style="bold")
    for column in ("ID", "QUEUE", "STATE", "RUNS", "LAST ERROR"):
        table.add_column(column)
    for job in reversed(queue.list()):
        colour = colours.get(job.state, "white")
        table.add_row(
            job.id,
            job.queue,
            f"[{colour}]{job.state}[/]",
            f"{job.attempts}/{job.max_retries + 1}",
            job.last_error or "",
        )
    return table


def _summary(console: Console, queue: Queue, keep: bool) -> None:
    status = queue.status()
    dead = queue.list(state="dead")
    print_ = console.print
    print_("\n[bold]dead-letter queue[/] ([dim]queuectl dlq list[/]):")
    for job in dead:
        print_(f"  [red]{job.id:<10}[/] {job.last_error}  after {job.attempts} run(s)")
    print_(
        "\n[bold]output of 'flaky'[/] ([dim]queuectl logs flaky[/]): "
        + queue.output("flaky").decode(errors="replace").strip()
    )
    counts = status["counts"]
    print_(
        f"\n[bold]summary[/]: {counts['completed']} completed, {counts['dead']} dead, "
        f"{counts['cancelled']} cancelled"
    )
    if keep:
        print_(
            "next: with that store ([dim]export QUEUECTL_DB=...[/] below), "
            "[dim]queuectl dlq retry --all[/] moves its dead jobs back to pending; "
            "[dim]queuectl --help[/] lists every command."
        )
    else:
        # The scratch store is deleted below: a hint acting on it must say how to keep it.
        print_(
            "next: [dim]queuectl demo --keep[/] keeps the scratch store, to try "
            "[dim]queuectl dlq retry --all[/] and the other commands on it; "
            "[dim]queuectl --help[/] lists every command."
        )
