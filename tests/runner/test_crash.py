"""Crashes and concurrency: SIGKILLed and frozen runners, and several runners on one queue."""

from __future__ import annotations

import json
import shlex
import signal
import time
from collections import Counter
from pathlib import Path

from queuectl import Queue
from tests.support.runners import group_members, read_pid, wait_until


def sleeper(pid_file: Path) -> str:
    """A job that records its shell's pid and sleeps in a child; its second attempt succeeds."""
    return (
        '[ "$QUEUECTL_ATTEMPT" = 2 ] && exit 0; '
        f"echo $$ > {shlex.quote(str(pid_file))}; sh -c 'sleep 30' & wait"
    )


def test_no_job_runs_twice_with_three_runners(queue: Queue, start_runner, tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    command = f'echo "$QUEUECTL_JOB_ID" >> {shlex.quote(str(seen))}'
    runners = [start_runner("-n", "4") for _ in range(3)]
    jobs = queue.enqueue_many([{"id": f"job-{n}", "command": command} for n in range(300)])

    wait_until(lambda: queue.status()["counts"]["completed"] == 300, 60, "300 completed jobs")

    assert Counter(seen.read_text().split()) == {job.id: 1 for job in jobs}
    assert {job.attempts for job in queue.list()} == {1}
    assert all(runner.process.poll() is None for runner in runners)


def test_sigkilled_runner_takes_its_jobs_processes_and_the_job_runs_again(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    queue.set_config("backoff_base", 1)  # the retry waits 1 s, not 2
    pid_file = tmp_path / "pid"
    job = queue.enqueue(sleeper(pid_file))
    first = start_runner()
    shell = read_pid(pid_file)
    wait_until(lambda: len(group_members(shell)) >= 2, 5, "the job's child")
    first.logged(f"started {job.id}")  # not before: the watchdog learns of the job only then

    # Left unreaped on purpose: a zombie runner is dead all the same.
    first.send(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: not group_members(shell), 5, "the job's processes to die with the runner")
    assert time.monotonic() - killed < 1

    start_runner()
    wait_until(lambda: queue.get(job.id).state == "failed", 5, "the job to be recovered")
    assert queue.get(job.id).last_error == "worker lost"
    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the second attempt")
    assert queue.get(job.id).attempts == 2


def test_a_dead_runner_on_this_host_is_recognised_at_once(
    queue: Queue, start_runner, cli, tmp_path: Path
) -> None:
    assert queue.get_config("lease_seconds") == 30
    pid_file = tmp_path / "pid"
    job = queue.enqueue(sleeper(pid_file))
    runner = start_runner()
    read_pid(pid_file)

    runner.send(signal.SIGKILL)
    runner.wait()
    killed = time.monotonic()
    status = json.loads(cli("status", "--json").stdout)
    assert status["runners"] == []
    # Readers recover nothing: the next runner up does, at once.
    assert (status["counts"]["processing"], status["counts"]["failed"]) == (1, 0)
    start_runner("--queue", "elsewhere")
    wait_until(lambda: queue.get(job.id).state == "failed", 5, "the job to be recovered")
    shown = json.loads(cli("show", job.id, "--json").stdout)
    assert (shown["state"], shown["attempts"], shown["last_error"]) == ("failed", 1, "worker lost")
    assert time.monotonic() - killed < 5  # far from the 30 s lease


def test_a_frozen_runner_of_another_host_loses_its_job_when_the_lease_expires(
    queue: Queue, start_runner, target: str, tmp_path: Path
) -> None:
    queue.set_config("lease_seconds", 2)
    queue.set_config("backoff_base", 1)
    pid_file = tmp_path / "pid"
    job = queue.enqueue(sleeper(pid_file))
    other = start_runner(env={"QUEUECTL_HOSTNAME": "other-host"})
    shell = read_pid(pid_file)
    wait_until(lambda: len(group_members(shell)) >= 2, 5, "the job's child")
    other.logged(f"started {job.id}")  # not before: the watchdog learns of the job only then
    assert queue.get(job.id).lease_owner.startswith("other-host-")

    other.freeze(target)
    lease_expires_at_ms = queue.get(job.id).lease_expires_at_ms
    start_runner()
    wait_until(lambda: queue.get(job.id).state == "failed", 8, "the lease to expire")
    lost = queue.get(job.id)
    assert lost.last_error == "worker lost"
    assert lost.updated_at_ms >= lease_expires_at_ms  # not before: its pid could not be checked
    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the second attempt")
    assert queue.get(job.id).attempts == 2

    # The frozen runner's job still runs (nothing on this host could check that runner);
    # SIGKILL closes its watchdog's pipe even while it is stopped, and the job dies too.
    assert group_members(shell)
    other.send(signal.SIGKILL)
    killed = time.monotonic()
    wait_until(lambda: not group_members(shell), 5, "the frozen runner's job to die")
    assert time.monotonic() - killed < 1
