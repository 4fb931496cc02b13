"""A dead runner's watchdog kills what its own claims started, and never a later attempt of the
same job that another runner on this host runs: a requeue numbers attempts from 1 again, so
only the claim token tells the two apart."""

from __future__ import annotations

import signal
from pathlib import Path

from queuectl import Queue
from tests.support.runners import RunnerProcess, alive, wait_until


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(word) for word in handle.read().split()]


def _watchdog_of(pid: int) -> int:
    for child in _children(pid):
        with open(f"/proc/{child}/cmdline", "rb") as handle:
            if b"watchdog" in handle.read():
                return child
    raise AssertionError(f"runner {pid} has no watchdog")


def _pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def test_a_dead_runners_watchdog_spares_the_next_attempt_one_of_the_same_number(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    queue.set_config("lease_seconds", 1)
    queue.enqueue(command=f"echo $$ >> {pids}; exec sleep 600", id="job")
    # Runner A, seen by B as on another host (so B reaps it by its lease alone), runs attempt 1.
    first = start_runner("-n", "1", env={"QUEUECTL_HOSTNAME": "elsewhere"})
    wait_until(lambda: len(_pids(pids)) == 1, what="attempt 1 under runner A")
    watchdog = _watchdog_of(first.pid)
    first.send(signal.SIGSTOP)  # A's watchdog still holds the claim; A renews nothing
    second = start_runner("-n", "1")
    wait_until(lambda: (job := queue.get("job")) is not None and job.state == "failed", 60)
    queue.requeue("job")  # the next attempt is numbered 1 again, under a new claim
    wait_until(lambda: len(_pids(pids)) == 2, 60, "attempt 1 again, under runner B")
    old, new = _pids(pids)
    job = queue.get("job")
    assert job is not None
    assert job.state == "processing"
    assert job.attempts == 1

    first.send(signal.SIGKILL)
    wait_until(lambda: not alive(watchdog), 10, "runner A's watchdog to finish")
    assert not alive(old), "A's own attempt outlived A"
    assert alive(new), "A's watchdog killed B's attempt of the same number"
    job = queue.get("job")
    assert job is not None
    assert job.state == "processing"
    second.send(signal.SIGTERM)


def _same_job_in_two_stores(
    queue: Queue, start_runner, tmp_path: Path, *args: str
) -> tuple[RunnerProcess, int, RunnerProcess, int]:
    """Job `same` under claim token 1 in `queue`'s store and in a SQLite store of its own, each
    run by a runner of its store on this host: (ours, its pid, theirs, its pid)."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    other = tmp_path / "other.db"
    queue.enqueue(command=f"echo $$ >> {ours}; exec sleep 600", id="same")
    with Queue(str(other)) as other_queue:
        other_queue.enqueue(command=f"echo $$ >> {theirs}; exec sleep 600", id="same")
    runner = start_runner("-n", "1", *args)
    bystander = start_runner("-n", "1", env={"QUEUECTL_DB": str(other)}, register=False)
    wait_until(lambda: len(_pids(ours)) == 1 and len(_pids(theirs)) == 1, 30, "both jobs")
    return runner, _pids(ours)[0], bystander, _pids(theirs)[0]


def test_a_dead_runners_watchdog_spares_a_job_of_the_same_id_in_another_store(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    runner, ours, bystander, theirs = _same_job_in_two_stores(queue, start_runner, tmp_path)
    watchdog = _watchdog_of(runner.pid)
    runner.send(signal.SIGKILL)
    wait_until(lambda: not alive(watchdog), 10, "the dead runner's watchdog to finish")
    assert not alive(ours), "the dead runner's job outlived it"
    assert alive(theirs), "its watchdog killed another store's job of the same id and token"
    bystander.send(signal.SIGTERM)


def test_a_frozen_runners_jobs_killed_by_a_sibling_spare_another_stores_job(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    queue.set_config("lease_seconds", 1)
    runner, ours, bystander, theirs = _same_job_in_two_stores(queue, start_runner, tmp_path)
    runner.send(signal.SIGSTOP)  # frozen past its lease: a sibling kills its jobs' processes
    sibling = start_runner("-n", "1")
    try:
        wait_until(lambda: not alive(ours), 30, "the sibling to kill the frozen runner's job")
        assert alive(theirs), "the sibling killed another store's job of the same id and token"
    finally:
        runner.send(signal.SIGKILL)
        sibling.send(signal.SIGTERM)
        bystander.send(signal.SIGTERM)
