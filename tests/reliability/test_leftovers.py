"""A runner that recovers the jobs of a runner dead on its host frees their slots and locks only
once their processes are dead.

The dead runner's watchdog kills its jobs when its pipe closes, but nothing orders that before
another runner's reap: under load (or with the watchdog slow to run) the next holder of a lock
started while the killed runner's job was still running, seen once in the chaos test as two
holders of a lock at once. The recovering runner now kills what is left of those attempts
itself, and waits for it, before the store frees them.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from queuectl import Queue
from tests.reliability.conftest import Runners, _children
from tests.support.runners import wait_until

LOCK = "only-one"


def watchdog_of(runner_pid: int) -> int:
    """The pid of a runner's watchdog (its child running queuectl.runner.watchdog)."""
    for pid in _children(runner_pid):
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"queuectl.runner.watchdog" in handle.read():
                return pid
    raise AssertionError(f"runner {runner_pid} has no watchdog")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("recoverer", ["runner", "reader", "recover"])
def test_a_lock_is_freed_only_when_the_dead_runners_job_is_dead(
    target: str, runners: Runners, tmp_path: Path, recoverer: str
) -> None:
    """`recoverer`: when the dead runner's job is recovered: by another runner of this host
    already up, by the next runner to start (readers such as `queuectl status` leave it), or
    by `Queue.recover` (`queuectl worker recover`) before any runner is up."""
    log = tmp_path / "log"
    queue = Queue(target)
    first = runners.start(target, workers=1)
    queue.enqueue(
        f"echo S1 >> {log}; sleep 4; echo E1 >> {log}", id="first", lock=LOCK, max_retries=0
    )
    wait_until(lambda: log.exists() and "S1" in log.read_text(), 30, "the first job to start")
    if recoverer == "runner":
        runners.start(target, workers=1)
    queue.enqueue(f"echo S2 >> {log}", id="second", lock=LOCK)

    # The dead runner's watchdog is frozen: only the recoverer can kill the job now.
    watchdog = watchdog_of(first.pid)
    os.kill(watchdog, signal.SIGSTOP)
    try:
        first.send(signal.SIGKILL)
        first.wait(10)
        if recoverer in ("reader", "recover"):
            assert queue.runners() == []
            assert queue.get("first").state == "processing", "a reader recovered a job"
        if recoverer == "recover":
            done = queue.recover()
            assert done.jobs == ["first"]
            assert done.killed >= 1, "the dead runner's job was not killed"
            assert queue.get("first").state == "dead"
        if recoverer != "runner":
            runners.start(target, workers=1)
        wait_until(lambda: queue.get("second").state == "completed", 30, "the second job to run")
        time.sleep(4.5)  # past the end the first job would have reached, had it lived
    finally:
        os.kill(watchdog, signal.SIGCONT)  # it ends at once: its pipe is closed
    assert log.read_text().split() == ["S1", "S2"], "the first job ran on beside the second"
    assert queue.get("first").state == "dead"
    queue.close()
