"""A cancelled attempt that ignores SIGTERM dies to the end before anything takes its place: its
job run again (requeue), its lock or its queue's slot wait until its processes are
gone, with a real runner, on both stores.

Each job appends `S <pid> <ns>` when it starts and `B <pid> <ns>` every 50 ms while it lives (it
ignores SIGTERM, so only the SIGKILL that follows ends it): a line of one process after the
start line of another means that the two ran at once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from tests.support.runners import alive, wait_until

#: Lives about 4 s unless killed; SIGTERM, ignored, is inherited by its `sleep`s too.
STUBBORN = (
    "trap '' TERM; echo \"S $$ $(date +%s%N)\" >> {log}; i=0; "
    'while [ $i -lt 80 ]; do echo "B $$ $(date +%s%N)" >> {log}; sleep 0.05; i=$((i+1)); done'
)


def lines(log: Path) -> list[tuple[str, int, int]]:
    """(kind, pid, ns) of every line, in the order they were appended."""
    found = []
    for line in log.read_text().splitlines():
        kind, pid, ns = line.split()
        found.append((kind, int(pid), int(ns)))
    return found


def starts(log: Path) -> list[int]:
    return [pid for kind, pid, _ in lines(log) if kind == "S"] if log.exists() else []


def overlaps(log: Path) -> list[str]:
    """Each process that wrote a line after a later process had started."""
    seen: list[int] = []
    found = []
    for kind, pid, _ in lines(log):
        if kind == "S":
            seen.append(pid)
        elif seen and pid != seen[-1] and pid in seen:
            found.append(f"{pid} lived on after {seen[-1]} started")
    return sorted(set(found))


def test_a_cancelled_job_requeued_never_runs_beside_its_dying_attempt(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    log = tmp_path / "record"
    job_id = queue.enqueue(STUBBORN.format(log=log), max_retries=0).id
    start_runner("--count", "2")
    wait_until(lambda: starts(log), 15, "the first attempt to start")
    queue.cancel(job_id)
    assert queue.requeue(job_id) == [job_id]
    wait_until(lambda: len(starts(log)) == 2, 20, "the job to start again")
    first, second = starts(log)
    wait_until(lambda: not alive(first), 10, "the cancelled attempt to end")
    assert overlaps(log) == [], "two attempts of one job ran at once"
    history = queue.history(job_id)
    assert [a.error for a in history] == ["cancelled", None]
    assert first != second


@pytest.mark.parametrize("held", ["lock", "slot"])
def test_a_cancelled_jobs_lock_and_slot_wait_for_its_processes(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path, held: str
) -> None:
    log = tmp_path / "record"
    fields: dict[str, Any] = {"lock": "prod"} if held == "lock" else {"queue": "renders"}
    if held == "slot":
        queue.set_queue("renders", concurrency=1)
    holder = queue.enqueue(STUBBORN.format(log=log), **fields).id
    start_runner("--count", "2")
    wait_until(lambda: starts(log), 15, "the holder to start")
    waiter = queue.enqueue(STUBBORN.format(log=log), **fields).id
    queue.cancel(holder)
    wait_until(lambda: len(starts(log)) == 2, 20, "the next job to start")
    first, _ = starts(log)
    wait_until(lambda: not alive(first), 10, "the cancelled holder to end")
    assert overlaps(log) == [], f"the {held} was handed over while its holder still ran"
    assert queue.get(waiter).state == "processing"
    assert queue.get(holder).lease_owner is None  # let go, its processes gone
