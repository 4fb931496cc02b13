"""Signals to a foreground runner: SIGHUP (its terminal closed) is a graceful stop, as SIGTERM."""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

from queuectl import Queue
from tests.support.runners import read_pid


def test_sighup_lets_the_running_job_finish_and_exits_0(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sleep 1; echo done")
    runner = start_runner()
    read_pid(pid_file)

    runner.send(signal.SIGHUP)
    runner.logged("SIGHUP received: stopping;")
    assert runner.wait(15) == 0

    done = queue.get(job.id)
    assert (done.state, done.attempts) == ("completed", 1)
    assert queue.output(job.id) == b"done\n"
    assert queue.runners() == []
