"""Retries with backoff, timeouts and the wakeup of an idle runner, on real runner processes."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

from queuectl import Queue
from tests.support.runners import alive, group_members, read_pid, wait_until


def test_failing_job_is_retried_after_2s_then_4s_and_ends_dead(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    queue.set_config("backoff_base", 2)
    starts = tmp_path / "starts"
    job = queue.enqueue(f"date +%s.%N >> {shlex.quote(str(starts))}; exit 1", max_retries=2)
    start_runner()

    wait_until(lambda: queue.get(job.id).state == "dead", 20, "the job to end dead")

    done = queue.get(job.id)
    assert (done.attempts, done.last_error, done.exit_code) == (3, "exit code 1", 1)
    first, second, third = (float(line) for line in starts.read_text().split())
    # Loose on purpose: the exact waits (2 s, then 4 s, from the end of the attempt) are tested
    # on the fake clock in store/test_survivors.py. Here a real runner must never start a
    # retry early and must not lose one for long; the upper bounds allow a loaded machine and
    # the 2 s fallback poll (issue 18's missed wakeup).
    assert 1.5 <= second - first <= 6.0
    assert 3.5 <= third - second <= 8.0


def test_timeout_kills_the_grandchild_and_the_job_ends_dead(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    # The grandchild ignores SIGTERM (an ignored signal survives exec): only the KILL stops it.
    job = queue.enqueue(
        f"echo $$ > {shlex.quote(str(pid_file))}; sh -c 'trap \"\" TERM; sleep 60' & wait",
        timeout="1s",
        max_retries=0,
    )
    start_runner()
    shell = read_pid(pid_file)
    group = wait_until(
        lambda: len(group_members(shell)) >= 2 and group_members(shell), 5, "the grandchild"
    )

    wait_until(lambda: queue.get(job.id).state == "dead", 5, "the timeout")
    ended = time.monotonic()
    wait_until(lambda: not any(alive(pid) for pid in group), 2, "the job's processes to die")
    assert time.monotonic() - ended < 2

    done = queue.get(job.id)
    assert (done.attempts, done.last_error) == (1, "timed out after 1s")


def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    pid_file = tmp_path / "pid"
    # The shell and what it starts ignore TERM: only the SIGKILL that follows it ends them.
    job = queue.enqueue(
        f"trap '' TERM; echo $$ > {shlex.quote(str(pid_file))}; sleep 60 & wait",
        timeout="1s",
        max_retries=0,
    )
    start_runner()
    shell = read_pid(pid_file)

    wait_until(lambda: queue.get(job.id).state == "dead", 8, "the SIGKILL after the timeout")
    wait_until(lambda: not group_members(shell), 2, "the job's processes to die")
    done = queue.get(job.id)
    assert (done.last_error, done.exit_code) == ("timed out after 1s", 137)


def test_config_job_timeout_applies_to_a_job_without_timeout(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    queue.set_config("job_timeout", 1)
    pid_file = tmp_path / "pid"
    job = queue.enqueue(f"echo $$ > {shlex.quote(str(pid_file))}; sleep 60 & wait", max_retries=0)
    start_runner()
    shell = read_pid(pid_file)

    wait_until(lambda: queue.get(job.id).state == "dead", 5, "the attempt to time out")
    wait_until(lambda: not group_members(shell), 2, "the job's processes to die")
    done = queue.get(job.id)
    assert (done.timeout, done.attempts, done.last_error) == (None, 1, "timed out after 1s")


def test_timeout_0_means_none_whatever_job_timeout_says(
    queue: Queue, start_runner, cli, tmp_path: Path
) -> None:
    queue.set_config("job_timeout", 1)
    enqueued = cli(
        "enqueue", "--id", "forever", "--timeout", "0", "--max-retries", "0", "--", "sleep", "2"
    )
    assert enqueued.returncode == 0, enqueued.stderr
    shown = json.loads(cli("show", "forever", "--json").stdout)
    assert shown["timeout"] == 0  # kept as asked, not turned into "the default"
    bounded = queue.enqueue("sleep 2", max_retries=0)
    start_runner("-n", "2")

    wait_until(lambda: queue.get("forever").state == "completed", 10, "the job to complete")
    done = queue.get("forever")
    assert (done.timeout, done.attempts, done.exit_code) == (0, 1, 0)
    wait_until(lambda: queue.get(bounded.id).state == "dead", 10, "the other to time out")
    assert queue.get(bounded.id).last_error == "timed out after 1s"


def test_a_job_enqueued_into_an_idle_runner_starts_at_once(queue: Queue, start_runner) -> None:
    start_runner()
    for n in range(3):
        job = queue.enqueue("true")
        wait_until(lambda job=job: queue.get(job.id).state == "completed", 5, f"job {n} to run")
        done = queue.get(job.id)
        assert done.started_at_ms is not None
        # The fallback poll is 2 s; only a wakeup starts it this soon. The real figure is
        # measured by the benchmark, not asserted here.
        assert done.started_at_ms - done.created_at_ms < 1000


def test_a_failure_says_why_and_a_missing_command_is_not_retried(
    queue: Queue, start_runner
) -> None:
    said = queue.enqueue(
        "echo starting; echo 'psql: error: connection refused' >&2; exit 2", max_retries=0
    )
    missing = queue.enqueue("no-such-command-anywhere --flag", max_retries=3)
    start_runner()

    wait_until(
        lambda: {queue.get(said.id).state, queue.get(missing.id).state} == {"dead"},
        20,
        "both jobs to end dead",
    )
    assert queue.get(said.id).last_error == "exit code 2: psql: error: connection refused"
    gone = queue.get(missing.id)
    assert gone.attempts == 1, "exit 127 is not retried by default"
    assert gone.last_error is not None
    assert gone.last_error.startswith("exit code 127 (command not found): ")
    assert "no-such-command-anywhere" in gone.last_error
    assert gone.last_error.endswith("(not retried)")
