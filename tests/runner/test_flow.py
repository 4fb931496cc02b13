"""Flow control with real runners (SPEC 9.2): three runners (three hosts on PostgreSQL) with
more workers than the limit, audited from what the jobs record and from their history."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from tests.support.runners import wait_until

#: Each job appends `start <id> <ns>` and `end <id> <ns>` to a shared file.
RECORD = (
    'echo "start $QUEUECTL_JOB_ID $(date +%s%N)" >> {log}; sleep {hold}; '
    'echo "end $QUEUECTL_JOB_ID $(date +%s%N)" >> {log}'
)


#: Tests that lengthen the runners' fallback poll to this show that a held-back job that starts
#: promptly (within WOKEN_S) was started by a wakeup, or by the instant a rate window opens.
LONG_POLL = {"QUEUECTL_POLL_S": "60"}
WOKEN_S = 10


def three_runners(start_runner: Callable[..., Any], target: str) -> None:
    for n in range(3):
        env = {"QUEUECTL_HOSTNAME": f"host-{n}"} if target.startswith("postgresql") else None
        start_runner("--count", "3", env=env)


def peak(log: Path, ids: set[str]) -> int:
    """The most jobs of `ids` running at once, from their own start and end lines."""
    events = []
    for line in log.read_text().splitlines():
        kind, job_id, ns = line.split()
        if job_id in ids:
            events.append((int(ns), 0 if kind == "end" else 1))
    running = highest = 0
    for _, step in sorted(events):  # an end at the same instant as a start comes first
        running += 1 if step else -1
        highest = max(highest, running)
    return highest


def drained(queue: Queue, ids: list[str]) -> Callable[[], bool]:
    return lambda: all(queue.get(job_id).state == "completed" for job_id in ids)


def test_concurrency_and_locks_hold_across_runners(
    queue: Queue, target: str, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    log = tmp_path / "record"
    queue.set_queue("renders", concurrency=2)
    # Held until every runner is up, so the runners that start later cannot find the others
    # already run by the first (a loaded machine starts them seconds apart).
    renders = [
        queue.enqueue(RECORD.format(log=log, hold=0.3), queue="renders", held=True).id
        for _ in range(10)
    ]
    deploys = [
        queue.enqueue(RECORD.format(log=log, hold=0.2), lock="prod", held=True).id for _ in range(5)
    ]
    others = [queue.enqueue(RECORD.format(log=log, hold=0.4), held=True).id for _ in range(6)]
    three_runners(start_runner, target)
    queue.release(*renders, *deploys, *others)
    wait_until(drained(queue, renders + deploys + others), 60, "every job to complete")
    assert peak(log, set(renders)) == 2
    assert peak(log, set(deploys)) == 1
    # Other jobs ran beside the deploys and renders: nothing else was held back.
    assert peak(log, set(renders + deploys + others)) > 3


def test_rate_holds_in_every_sliding_window(
    queue: Queue, target: str, start_runner: Callable[..., Any]
) -> None:
    queue.set_queue("api", rate="3/1s")
    ids = [queue.enqueue("true", queue="api").id for _ in range(9)]
    three_runners(start_runner, target)
    wait_until(drained(queue, ids), 60, "every job to complete")
    starts = sorted(queue.history(job_id)[0].started_at_ms for job_id in ids)
    # No window of 1 s holds more than 3 starts: the 4th start after any is 1 s later or more.
    gaps = [later - first for first, later in zip(starts, starts[3:], strict=False)]
    assert min(gaps) >= 1000
    # Held-back jobs start when the window opens, not at the 2 s fallback poll.
    assert max(gaps) < 1600, gaps


def test_a_job_held_by_the_rate_starts_when_the_window_opens(
    queue: Queue, start_runner: Callable[..., Any]
) -> None:
    """One runner, its fallback poll a minute long, so nothing but the instant the exchange
    named (the window's next opening) can explain a start on time."""
    queue.set_queue("api", rate="2/1s")
    ids = [queue.enqueue("true", queue="api").id for _ in range(6)]
    start_runner("--count", "3", env=LONG_POLL)
    wait_until(drained(queue, ids), 60, "every job to complete")
    starts = sorted(queue.history(job_id)[0].started_at_ms for job_id in ids)
    gaps = [later - first for first, later in zip(starts, starts[2:], strict=False)]
    assert min(gaps) >= 1000
    assert max(gaps) < 1600, gaps


def held(gate: Path) -> str:
    """A job that runs until `gate` exists."""
    return f"while [ ! -e {gate} ]; do sleep 0.02; done"


def started_after_release(queue: Queue, first: str, second: str) -> int:
    """Milliseconds between the end of `first` and the start of `second` (both completed)."""
    wait_until(drained(queue, [first, second]), WOKEN_S, f"{second} to start once {first} ended")
    ended = queue.history(first)[-1].finished_at_ms
    began = queue.history(second)[0].started_at_ms
    assert ended is not None
    assert began is not None
    return began - ended


def test_a_freed_lock_wakes_a_runner_of_another_queue(
    queue: Queue, target: str, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    """The lock's holder ends on runner A; only runner B serves the job waiting for the lock,
    and it is asleep for a minute: the settlement must wake it."""
    gate = tmp_path / "gate"
    holder = queue.enqueue(held(gate), queue="a", lock="deploy").id
    start_runner("--queue", "a", env=LONG_POLL)
    wait_until(lambda: queue.get(holder).state == "processing", 15, "the holder to start")
    waiter = queue.enqueue("true", queue="b", lock="deploy", priority=1).id
    other = queue.enqueue("true", queue="b").id
    start_runner("--queue", "b", env=LONG_POLL)
    # B settled `other` in the exchange that found `waiter` held back: B now sleeps.
    wait_until(drained(queue, [other]), 15, "runner B to run the job it may run")
    assert queue.get(waiter).state == "pending"
    gate.touch()
    assert started_after_release(queue, holder, waiter) < WOKEN_S * 1000


def test_a_freed_concurrency_slot_wakes_a_waiting_runner(
    queue: Queue, target: str, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    """Runner A, stopping, settles the job holding the queue's one slot and claims nothing:
    runner B, asleep for a minute with the queue's next job held back, must be woken."""
    gate = tmp_path / "gate"
    queue.set_queue("renders", concurrency=1)
    first = queue.enqueue(held(gate), queue="renders").id
    runner_a = start_runner("--queue", "renders", env=LONG_POLL)
    wait_until(lambda: queue.get(first).state == "processing", 15, "the first render to start")
    second = queue.enqueue("true", queue="renders", priority=1).id
    other = queue.enqueue("true", queue="other").id
    start_runner("--queue", "renders", "--queue", "other", env=LONG_POLL)
    wait_until(drained(queue, [other]), 15, "runner B to run the job it may run")
    assert queue.get(second).state == "pending"
    runner_a.process.send_signal(signal.SIGTERM)  # A finishes its job, then claims no other
    gate.touch()
    assert started_after_release(queue, first, second) < WOKEN_S * 1000
    assert queue.history(second)[0].runner != queue.history(first)[0].runner


def test_a_limit_lowered_below_the_running_count_holds_new_jobs_back(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    """Jobs already running go on; no other starts until fewer than the new limit run."""
    queue.set_queue("renders", concurrency=3)
    gates = [tmp_path / f"gate-{n}" for n in range(3)]
    running = [queue.enqueue(held(gate), queue="renders").id for gate in gates]
    start_runner("--count", "4")
    wait_until(lambda: all(queue.get(j).state == "processing" for j in running), 15, "3 renders")
    queue.set_queue("renders", concurrency=1)
    later = queue.enqueue("true", queue="renders").id
    for gate, job_id in zip(gates[:2], running[:2], strict=True):
        gate.touch()
        # The exchange that settled it looked for more: one render still runs, the limit.
        wait_until(drained(queue, [job_id]), 15, f"{job_id} to complete")
        assert queue.get(later).state == "pending"
    gates[2].touch()
    wait_until(drained(queue, [running[2], later]), 15, "the last render, then the later one")
    last_end = queue.history(running[2])[0].finished_at_ms
    assert last_end is not None
    assert queue.history(later)[0].started_at_ms >= last_end


def test_a_lock_holder_that_times_out_frees_its_lock_at_once(
    queue: Queue, start_runner: Callable[..., Any]
) -> None:
    holder = queue.enqueue("sleep 60", lock="deploy", timeout=1, max_retries=0).id
    waiter = queue.enqueue("true", lock="deploy").id
    start_runner("--count", "2", env=LONG_POLL)
    wait_until(drained(queue, [waiter]), 15, "the waiting job to run")
    assert queue.get(holder).state == "dead"
    ended = queue.history(holder)[0].finished_at_ms
    assert ended is not None
    assert queue.history(waiter)[0].started_at_ms - ended < 1000
