"""What a command sees, and the runner-facing commands: `worker start --detach`, `list`, `stop`, `wait`."""

from __future__ import annotations

import json
import os
import resource
import shlex
import socket
import subprocess
from pathlib import Path

from queuectl import Queue
from tests.support.cli import QUEUECTL
from tests.support.runners import alive, wait_until


def test_the_command_sees_its_ids_env_and_cwd_and_an_empty_stdin(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    script = (
        'printf "%s\\n" "$QUEUECTL_JOB_ID" "$QUEUECTL_ATTEMPT" "$FROM_JOB" "$FROM_RUNNER" '
        f'"$SHARED" "$(pwd)" > {shlex.quote(str(seen))}; '
        f"wc -c < /dev/stdin | tr -d ' ' >> {shlex.quote(str(seen))}"
    )
    job = queue.enqueue(
        script,
        id="env-job",
        cwd=str(workdir),
        env={"FROM_JOB": "a b $c", "SHARED": "job", "QUEUECTL_ATTEMPT": "99"},
    )
    start_runner(env={"FROM_RUNNER": "runner", "SHARED": "runner"})

    wait_until(lambda: queue.get(job.id).state == "completed", 5, "the job to complete")

    assert seen.read_text().splitlines() == [
        "env-job",
        "1",
        "a b $c",
        "runner",
        "job",
        str(workdir),
        "0",
    ]


def test_detached_runner_is_listed_and_stopped(queue: Queue, cli, tmp_path: Path) -> None:
    log = tmp_path / "runner.log"
    started = cli("worker", "start", "--detach", "-n", "3", "--log-file", str(log))
    assert started.returncode == 0, started.stderr
    pid = int(started.stdout.strip())
    assert alive(pid)

    listed = cli("worker", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (runner,) = json.loads(listed.stdout)
    assert {"id", "host", "pid", "workers", "started_at", "heartbeat_at", "running"} <= set(runner)
    assert (runner["host"], runner["pid"], runner["workers"], runner["running"]) == (
        socket.gethostname(),
        pid,
        3,
        [],
    )
    assert runner["started_at"].endswith("Z")
    assert runner["heartbeat_at"].endswith("Z")

    stopped = cli("worker", "stop", "--timeout", "20s")
    assert stopped.returncode == 0, stopped.stderr
    wait_until(lambda: not alive(pid), 5, "the detached runner to exit")
    assert json.loads(cli("worker", "list", "--json").stdout) == []
    assert "started" in log.read_text()


def test_wait_exits_0_when_every_job_completed_and_1_when_one_ended_dead(
    queue: Queue, start_runner, cli
) -> None:
    good = [queue.enqueue("true"), queue.enqueue("sleep 0.3")]
    bad = queue.enqueue("exit 3", max_retries=0)
    start_runner("-n", "2")

    completed = cli("wait", *(job.id for job in good), timeout=20)
    every = cli("wait", timeout=20)

    assert completed.returncode == 0, completed.stderr
    assert {queue.get(job.id).state for job in good} == {"completed"}
    assert every.returncode == 1
    assert queue.get(bad.id).state == "dead"


def test_wait_counts_a_job_seen_finished_that_retention_deleted_since(
    queue: Queue, start_runner, process_env: dict[str, str], tmp_path: Path
) -> None:
    queue.set_config("retain_completed", 1)
    go = tmp_path / "go"
    queue.enqueue("true", id="a")
    queue.enqueue(f"until [ -e {go} ]; do sleep 0.05; done", id="b")
    waiting = subprocess.Popen(
        [QUEUECTL, "wait", "a", "b"],
        env=process_env,
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    start_runner("-n", "2")
    wait_until(lambda: queue.find("a") is None, 30, "retention to delete the completed a")
    assert waiting.poll() is None, waiting.communicate()[1]
    go.touch()
    _, stderr = waiting.communicate(timeout=20)
    assert waiting.returncode == 0, stderr
    assert stderr.splitlines()[-1] == "finished: 2 jobs"


def test_wait_timeout_exits_124(queue: Queue, cli) -> None:
    queue.enqueue("true")  # no runner is up: it stays pending

    result = cli("wait", "--timeout", "0.5s", timeout=20)

    assert result.returncode == 124
    assert result.stderr.splitlines()[-1].startswith("error: ")


def test_a_command_that_cannot_start_fails_with_the_reason(
    queue: Queue, start_runner, tmp_path: Path
) -> None:
    missing = tmp_path / "missing"
    job = queue.enqueue("true", cwd=str(missing), max_retries=0)
    start_runner()

    wait_until(lambda: queue.get(job.id).state == "dead", 5, "the job to end dead")

    done = queue.get(job.id)
    assert done.attempts == 1
    assert done.last_error is not None
    assert done.last_error.startswith("cannot start: ")
    assert str(missing) in done.last_error


def test_a_runner_runs_at_most_its_workers_jobs_at_once(
    queue: Queue, start_runner, cli, tmp_path: Path
) -> None:
    running, counts = tmp_path / "running", tmp_path / "counts"
    running.mkdir()
    command = (
        f'touch {running}/"$QUEUECTL_JOB_ID"; ls {running} | wc -l >> {counts}; '
        f'sleep 0.3; rm {running}/"$QUEUECTL_JOB_ID"'
    )
    for _ in range(6):
        queue.enqueue(command)
    start_runner("-n", "2")

    assert cli("wait", timeout=30).returncode == 0
    seen = [int(line) for line in counts.read_text().split()]
    assert len(seen) == 6
    assert max(seen) == 2, seen


def test_a_job_killed_by_a_signal_exits_128_plus_its_number(queue: Queue, start_runner) -> None:
    job = queue.enqueue("kill -TERM $$", max_retries=0)
    start_runner()

    wait_until(lambda: queue.get(job.id).state == "dead", 10, "the job to end")
    done = queue.get(job.id)
    assert done.exit_code == 143
    assert done.last_error is not None
    assert done.last_error.startswith("exit code 143 (killed by signal 15 (TERM))")


def test_env_all_gives_the_job_the_enqueuers_environment_but_its_secrets(
    queue: Queue, process_env: dict[str, str], start_runner
) -> None:
    shown = 'printf "%s|" "$MYVAR" "$SHARED" "$API_TOKEN" "$DB_PASSWORD"'
    here = {
        **process_env,
        "MYVAR": "from the shell",
        "SHARED": "enqueuer",
        "API_TOKEN": "t0ken",
        "DB_PASSWORD": "hunter2",
    }

    def enqueue(*args: str) -> None:
        result = subprocess.run(
            [QUEUECTL, "enqueue", *args, "-c", shown], env=here, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr

    enqueue("--id", "plain")
    enqueue("--id", "every", "-E")
    enqueue("--id", "named", "-E", "--env", "API_TOKEN")
    assert "DB_PASSWORD" not in queue.get("every").env
    assert not any(name.startswith("QUEUECTL_") for name in queue.get("every").env)
    start_runner(env={"SHARED": "runner"})
    wait_until(
        lambda: all(queue.get(j).state == "completed" for j in ("plain", "every", "named")),
        10,
        "the jobs to complete",
    )
    assert queue.output("plain") == b"|runner|||"  # the runner's environment alone
    assert queue.output("every") == b"from the shell|enqueuer|||"
    assert queue.output("named") == b"from the shell|enqueuer|t0ken||"


def test_a_runner_out_of_descriptors_fails_the_jobs_it_cannot_start_and_lives_on(
    queue: Queue, start_runner
) -> None:
    runner = start_runner("-n", "8")
    # A few descriptors to spare: some jobs start, then the spawns run out of descriptors.
    spare = len(os.listdir(f"/proc/{runner.pid}/fd")) + 3
    resource.prlimit(runner.pid, resource.RLIMIT_NOFILE, (spare, spare))
    jobs = [queue.enqueue("sleep 0.2", max_retries=0) for _ in range(8)]

    def ended() -> bool:
        return all(queue.get(job.id).state in ("completed", "dead") for job in jobs)

    wait_until(lambda: ended() or runner.process.poll() is not None, 15, "the jobs to end")
    assert runner.process.poll() is None, runner.log()
    errors = {queue.get(job.id).last_error for job in jobs} - {None}
    assert errors == {"cannot start: Too many open files"}, errors
