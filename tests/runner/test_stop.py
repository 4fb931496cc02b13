"""Graceful stop: by `worker stop` or SIGTERM running jobs finish; `--grace` gives them back."""

from __future__ import annotations

import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.explain import explain_job
from tests.support.cli import QUEUECTL
from tests.support.runners import RunnerProcess, group_members, read_pid, wait_until


def stop(
    how: str, runner: RunnerProcess, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    if how == "worker stop":
        result = cli("worker", "stop", "--timeout", "20s")
        assert result.returncode == 0, result.stderr
    else:
        runner.send(signal.SIGTERM)


@pytest.mark.parametrize("how", ["worker stop", "SIGTERM"])
def test_stop_lets_the_running_job_finish_and_exits_0(
    how: str, queue: Queue, start_runner, process_env: dict[str, str], tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sleep 2; echo done")
    runner = start_runner("-n", "2")
    read_pid(pid_file)

    with subprocess.Popen(
        [QUEUECTL, "worker", "stop", "--timeout", "20s"] if how == "worker stop" else ["true"],
        env=process_env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    ) as stopper:
        if how == "SIGTERM":
            runner.send(signal.SIGTERM)
        runner.logged("stopping;")
        later = queue.enqueue("true")  # a stopping runner claims nothing new, woken or not
        assert runner.wait(10) == 0
        _, errors = stopper.communicate(timeout=10)

    assert stopper.returncode == 0, errors
    done = queue.get(job.id)
    assert (done.state, done.attempts) == ("completed", 1)
    assert queue.output(job.id) == b"done\n"
    assert queue.get(later.id).state == "pending"
    assert queue.runners() == []


@pytest.mark.parametrize("how", ["worker stop", "SIGTERM"])
def test_stop_with_grace_kills_the_job_and_returns_it_to_pending(
    how: str, queue: Queue, start_runner, cli, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sh -c 'sleep 30' & wait")
    runner = start_runner("--grace", "1")
    shell = read_pid(pid_file)

    stop(how, runner, cli)

    assert runner.wait(10) == 0
    released = queue.get(job.id)
    assert (released.state, released.attempts, released.lease_owner) == ("pending", 0, None)
    wait_until(lambda: not group_members(shell), 2, "the job's processes to die")


def test_stop_with_grace_0_kills_the_job_at_once(
    queue: Queue, start_runner, cli, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sh -c 'sleep 30' & wait")
    runner = start_runner("--grace", "0")  # no grace at all, not "no limit"
    shell = read_pid(pid_file)

    stop("worker stop", runner, cli)

    assert runner.wait(10) == 0  # `worker stop` returned: the runner has exited already
    released = queue.get(job.id)
    assert (released.state, released.attempts, released.lease_owner) == ("pending", 0, None)
    wait_until(lambda: not group_members(shell), 2, "the job's processes to die")


def test_a_second_sigint_stops_now_and_gives_the_job_back(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sh -c 'sleep 30' & wait")
    runner = start_runner()  # no --grace: the first SIGINT alone would wait forever
    shell = read_pid(pid_file)

    runner.send(signal.SIGINT)
    runner.logged("stopping;")
    runner.send(signal.SIGINT)

    assert runner.wait(5) == 0
    released = queue.get(job.id)
    assert (released.state, released.attempts) == ("pending", 0)
    wait_until(lambda: not group_members(shell), 2, "the job's processes to die")


def test_an_idle_runner_stops_at_once_on_sigterm(queue: Queue, start_runner) -> None:
    runner = start_runner()

    runner.send(signal.SIGTERM)

    assert runner.wait(5) == 0
    assert queue.runners() == []


def test_a_runner_asked_to_stop_shows_stopping_until_the_request_is_withdrawn(
    queue: Queue, start_runner, cli, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    pid_file = tmp_path / "pid"
    busy = queue.enqueue(
        f"echo $$ > {shlex.quote(str(pid_file))}; "
        f"while [ ! -e {shlex.quote(str(release))} ]; do sleep 0.05; done"
    )
    runner = start_runner("-n", "2")
    read_pid(pid_file)

    gave_up = cli("worker", "stop", "--timeout", "0.3s")
    assert gave_up.returncode == 1
    [line] = gave_up.stderr.splitlines()[1:]  # after "asked 1 runner to stop; waiting"
    assert line.startswith("error: 1 runner still running after 0.3s, finishing 1 job(s)")
    assert f"kill -INT {runner.pid}" in line
    assert "queuectl worker stop --cancel" in line
    runner.logged("stopping;")
    [shown] = queue.status()["runners"]
    assert shown["stopping"] is True
    waiting = queue.enqueue("true")
    why = explain_job(queue, waiting.id)
    assert why["reason"] == "runner_stopping", why
    assert "the only runner serving queue 'default' is stopping" in why["message"]
    listed = cli("worker", "list")
    assert "stopping" in listed.stdout, listed.stdout

    kept = cli("worker", "stop", "--cancel")
    assert (kept.returncode, kept.stderr) == (0, "1 runner no longer stopping: taking jobs again\n")
    runner.logged("stop request withdrawn")
    wait_until(lambda: queue.get(waiting.id).state == "completed", 10, "the runner to serve again")
    assert queue.status()["runners"][0]["stopping"] is False
    release.touch()
    wait_until(lambda: queue.get(busy.id).state == "completed", 10, "the first job to end")
    assert runner.process.poll() is None, "a withdrawn stop leaves the runner up"
    assert cli("worker", "stop", "--cancel").stderr == "no runner is stopping\n"
