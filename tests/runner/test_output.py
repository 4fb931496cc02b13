"""A job's output (capped to its tail, followed live), and cancelling a running job."""

from __future__ import annotations

import select
import shlex
import subprocess
import time
from pathlib import Path

from queuectl import Queue
from tests.support.cli import QUEUECTL
from tests.support.runners import group_members, read_pid, wait_until


def test_output_is_capped_to_its_last_output_limit_bytes(queue: Queue, start_runner, cli) -> None:
    assert queue.get_config("output_limit") == 65536
    lines = 750_000  # `seq 1 750000` writes about 5 MB
    job = queue.enqueue(f"seq 1 {lines}")
    start_runner()
    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the job to complete")

    shown = cli("logs", job.id, text=False)

    assert shown.returncode == 0
    written = "".join(f"{n}\n" for n in range(1, lines + 1)).encode()
    assert len(written) > 5_000_000
    dropped = len(written) - 65536
    marker = f"[queuectl: {dropped} earlier bytes dropped]\n".encode()
    assert shown.stdout == marker + written[-65536:]


def test_logs_follow_streams_lines_while_the_job_runs(
    queue: Queue, start_runner, process_env: dict[str, str], tmp_path: Path
) -> None:
    go_on = tmp_path / "go-on"
    job = queue.enqueue(
        f"echo first; while [ ! -e {shlex.quote(str(go_on))} ]; do sleep 0.05; done; echo last"
    )
    start_runner()
    with subprocess.Popen(
        [QUEUECTL, "logs", job.id, "--follow"],
        env=process_env,
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    ) as follow:
        assert follow.stdout is not None
        ready, _, _ = select.select([follow.stdout], [], [], 10)
        assert ready, "no output from logs --follow within 10s"
        assert follow.stdout.readline() == b"first\n"
        assert queue.get(job.id).state == "processing"

        go_on.touch()
        rest, _ = follow.communicate(timeout=10)

    assert follow.returncode == 0
    assert rest == b"last\n"
    assert queue.get(job.id).state == "completed"


def test_cancel_kills_a_running_job(queue: Queue, start_runner, cli, tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sh -c 'sleep 30' & wait")
    runner = start_runner()
    shell = read_pid(pid_file)
    wait_until(lambda: len(group_members(shell)) >= 2, 5, "the job's child")

    result = cli("cancel", job.id)
    cancelled_at = time.monotonic()

    assert result.returncode == 0, result.stderr
    wait_until(lambda: not group_members(shell), 2.5, "the job's processes to die")
    assert time.monotonic() - cancelled_at < 2.5
    done = queue.get(job.id)
    assert (done.state, done.last_error, done.attempts) == ("cancelled", "cancelled", 1)
    # The slot is free again, and the killed attempt's end wrote nothing over the cancel.
    after = queue.enqueue("true")
    wait_until(lambda: queue.get(after.id).state == "completed", 5, "the next job")
    assert runner.process.poll() is None
    assert queue.get(job.id).state == "cancelled"
