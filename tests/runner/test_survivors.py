"""Runner behaviour that planted bugs once survived (issue 18), with real runner processes.

Each test names the bug it catches; they wait on conditions, never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.runner.liveness import STALE_LEASES, host_name, process_started
from tests.support.fake_runner import runner_row
from tests.support.runners import RunnerProcess, alive, read_pid, wait_until

Cli = Callable[..., subprocess.CompletedProcess[str]]
StartRunner = Callable[..., RunnerProcess]


def listed_runners(cli: Cli) -> list[dict[str, Any]]:
    """The live runners of `worker list --json` (not those shown lost), and the same in
    `status --json`."""
    result = cli("worker", "list", "--json")
    assert result.returncode == 0, result.stderr
    runners: list[dict[str, Any]] = json.loads(result.stdout)
    status = cli("status", "--json")
    assert status.returncode == 0, status.stderr
    live = [r for r in runners if r["state"] != "lost"]
    assert {r["id"] for r in json.loads(status.stdout)["runners"]} >= {r["id"] for r in live}
    return live


# -- survivor 3: timeout, cancel and --grace send SIGTERM to the whole process group


@pytest.mark.parametrize("how", ["timeout", "cancel", "grace"])
def test_a_child_that_traps_term_gets_it_on_timeout_cancel_and_grace(
    how: str, queue: Queue, start_runner: StartRunner, cli: Cli, tmp_path: Path
) -> None:
    marker, child_pid = tmp_path / "cleaned-up", tmp_path / "child-pid"
    child = (
        f"trap 'echo TERM > {shlex.quote(str(marker))}; exit 0' TERM; "
        f"echo $$ > {shlex.quote(str(child_pid))}; while :; do sleep 0.05; done"
    )
    # The job's shell survives the TERM and waits for its child, so the child's trap runs
    # before the group is KILLed; a TERM to the shell alone never reaches the child.
    command = f"trap : TERM; sh -c {shlex.quote(child)} & wait $!; wait $!"
    job = queue.enqueue(command, max_retries=0, timeout="1s" if how == "timeout" else None)
    runner = start_runner(*(["--grace", "0.5"] if how == "grace" else []))
    pid = read_pid(child_pid)

    if how == "cancel":
        assert cli("cancel", job.id).returncode == 0
    elif how == "grace":
        runner.send(signal.SIGTERM)
    wait_until(lambda: not alive(pid), 10, "the job's child to end")

    assert marker.exists(), "the child was killed without getting SIGTERM"
    assert marker.read_text() == "TERM\n"
    expected = {"timeout": "dead", "cancel": "cancelled", "grace": "pending"}[how]
    wait_until(lambda: queue.get(job.id).state == expected, 10, f"the job to be {expected}")


# -- survivor 4: a retry that prints nothing shows no output, not the previous attempt's


def test_a_retry_that_prints_nothing_does_not_show_the_previous_attempts_output(
    queue: Queue, start_runner: StartRunner
) -> None:
    queue.set_config("backoff_max", 0)  # retry at once
    job = queue.enqueue(
        'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then echo first attempt; exit 1; fi', max_retries=1
    )
    start_runner()
    wait_until(lambda: queue.get(job.id).state == "completed", 15, "the retry to complete")
    assert queue.get(job.id).attempts == 2
    assert queue.output(job.id) == b"", "the silent retry shows the first attempt's output"


# -- survivor 5: a runner record whose pid now belongs to another process is dead


def test_a_runner_whose_pid_was_reused_by_another_process_is_reaped_at_once(
    queue: Queue, cli: Cli, process_env: dict[str, str], start_runner: StartRunner
) -> None:
    queue.set_config("lease_seconds", 600)  # nothing here may wait for a lease
    other = subprocess.Popen(["sleep", "300"], env=process_env, stdin=subprocess.DEVNULL)
    try:
        started = process_started(other.pid)
        assert started is not None
        now = queue.now_ms()
        for name, pid_started in (("reused", f"{started}0"), ("genuine", started)):
            row = runner_row(
                name, host=host_name(), pid=other.pid, at_ms=now, pid_started=pid_started
            )
            queue._store.register_runner(row)
        ours, theirs = queue.enqueue("true"), queue.enqueue("true")
        assert [c.id for c in queue._store.finish_and_claim("reused", [], 1, None, 600).claims] == [
            ours.id
        ]
        assert [
            c.id for c in queue._store.finish_and_claim("genuine", [], 1, None, 600).claims
        ] == [theirs.id]

        ids = {r["id"] for r in listed_runners(cli)}
        assert "reused" not in ids, "a runner whose pid belongs to another process is listed"
        assert "genuine" in ids, "the runner that does own the pid is gone"
        everyone = json.loads(cli("worker", "list", "--json").stdout)
        assert {r["id"]: r["state"] for r in everyone} == {"reused": "lost", "genuine": "up"}
        assert queue.get(ours.id).state == "processing", "a reader recovered a job"
        start_runner("--queue", "elsewhere")  # a runner does, at once
        lost = wait_until(
            lambda: (j := queue.get(ours.id)).state != "processing" and j, 5, "the recovery"
        )
        assert (lost.state, lost.last_error, lost.attempts) == ("failed", "worker lost", 1)
        assert queue.get(theirs.id).state == "processing"
    finally:
        other.kill()
        other.wait()


# -- survivor 6: a runner of another host silent for more than STALE_LEASES leases leaves the lists


def test_a_silent_runner_of_another_host_leaves_the_lists_after_its_leases(
    queue: Queue, target: str, start_runner: StartRunner, cli: Cli
) -> None:
    queue.set_config("lease_seconds", 1)
    other = start_runner(env={"QUEUECTL_HOSTNAME": "other-host"})
    other.freeze(target)
    # Its last heartbeat, read without reaping (a slow start of the next runner, under load,
    # may outlast its leases): frozen, it beats no more.
    (last_beat,) = [r.heartbeat_at_ms for r in queue._store.runners() if r.host == "other-host"]
    start_runner()

    def other_gone() -> bool:
        return not [r for r in queue.runners() if r.host == "other-host"]

    wait_until(other_gone, 20, "the silent runner of other-host to leave the list")
    gone_at = queue.now_ms()
    silent_ms = STALE_LEASES * 1000 - 100
    assert gone_at - last_beat > silent_ms, "removed before it was silent for its leases"
    assert [r["host"] for r in listed_runners(cli)] == [host_name()]


# -- survivor 7: results written once the store is back, not dropped; attempts are honest


def test_a_result_written_after_the_store_came_back_does_not_run_the_job_twice(
    backend: str, target: str, queue: Queue, start_runner: StartRunner, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the outage is the SQLite file moved away (PostgreSQL: store/test_postgres)")
    # A long lease: the runner's heartbeat (lease/3) must not be what meets the outage first.
    queue.set_config("lease_seconds", 300)
    runs, go, pid_file = tmp_path / "runs", tmp_path / "go", tmp_path / "pid"
    job = queue.enqueue(
        f"echo $$ > {shlex.quote(str(pid_file))}; echo run >> {shlex.quote(str(runs))}; "
        f"while [ ! -e {shlex.quote(str(go))} ]; do sleep 0.02; done",
        max_retries=3,
    )
    runner = start_runner()
    shell = read_pid(pid_file)

    away = f"{target}.away"
    os.rename(target, away)
    try:
        go.touch()
        wait_until(lambda: not alive(shell), 10, "the job to finish")
        # The first store call that needs the file is the write of the result.
        runner.logged("cannot use the store", 10)
    finally:
        os.rename(away, target)
    runner.logged("the store is reachable again", 10)

    # Dropped, the result could only be replaced by a second run: completed means settled.
    wait_until(lambda: queue.get(job.id).state == "completed", 10, "the result to be written")
    assert runs.read_text() == "run\n", "the job ran twice"
    assert queue.get(job.id).attempts == 1
