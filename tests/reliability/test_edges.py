"""Issue 12, items 1 to 4 and 6: the guarantees at their edges, with real runners and signals.

A runner in another PID namespace with the same host name, a frozen and resumed runner, the late
output of a purged job, a store outage and a clock step longer than the lease, a frozen runner of
another host: none of them may run a job twice, write over a newer attempt, or keep a stop
waiting. Each test fails on the store before the shared core (d3eb84f).
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from queuectl import Queue
from queuectl.store import Runner, open_store
from tests.support.cli import QUEUECTL
from tests.support.clock import FakeClock, stepped_clock
from tests.support.runners import (  # noqa: F401 - fixtures used here
    GATED,
    RunnerProcess,
    alive,
    cli,
    process_env,
    read_pid,
    runner_of,
    start_runner,
    wait_beats,
    wait_until,
)

Cli = Callable[..., subprocess.CompletedProcess[str]]
StartRunner = Callable[..., RunnerProcess]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


# -- item 1: a runner in another PID namespace, with the same host name


@pytest.fixture
def namespaced_runner(
    process_env: dict[str, str],  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> Iterator[Callable[[], tuple[subprocess.Popen[bytes], Path]]]:
    """Starts `queuectl worker start` inside `unshare --pid --fork --mount-proc` (its own PID
    namespace, this host's name); skips where that cannot be done (no util-linux, not root)."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare (util-linux)")
    trial = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True
    )
    if trial.returncode != 0:
        pytest.skip(f"cannot make a PID namespace here: {trial.stderr.strip()}")
    started: list[tuple[subprocess.Popen[bytes], Path]] = []

    def start() -> tuple[subprocess.Popen[bytes], Path]:
        log_path = tmp_path / "namespaced-runner.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", QUEUECTL, "worker", "start"],
                env=process_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append((process, log_path))
        return process, log_path

    yield start
    for process, log_path in started:
        if process.poll() is None:
            process.kill()  # unshare; the runner inside dies by the test's tag
        process.wait(10)
        print(f"--- namespaced runner, last lines:\n{log_path.read_text()[-3000:]}")


def test_a_runner_in_another_pid_namespace_is_not_reaped_by_readers(
    queue: Queue,
    cli: Cli,  # noqa: F811
    start_runner: StartRunner,  # noqa: F811
    namespaced_runner: Callable[[], tuple[subprocess.Popen[bytes], Path]],
    tmp_path: Path,
) -> None:
    queue.set_config("lease_seconds", 2)
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="inside")
    # A runner outside, on this host, serving another queue: its housekeeping judges the other.
    outside = start_runner("--queue", "elsewhere")
    _, log_path = namespaced_runner()
    wait_until(lambda: "started inside" in log_path.read_text(), 30, "the namespaced runner")
    wait_until(runs.exists, 10, "the job to start")
    job = queue.get("inside")
    assert job.state == "processing"
    owner = job.lease_owner

    for _ in range(3):  # every reader, several times, while the job runs
        shown = json.loads(ok(cli("status", "--json")))["runners"]
        assert owner in {r["id"] for r in shown}
        listed = json.loads(ok(cli("worker", "list", "--json")))
        assert owner in {r["id"] for r in listed}
        assert owner in {r.id for r in queue.runners()}
    wait_beats(queue, outside.pid)  # the outside runner has reaped whatever it took for dead
    assert owner in {r.id for r in queue.runners()}
    assert queue.get("inside").state == "processing"

    go.touch()
    done = wait_until(
        lambda: (j := queue.get("inside")).state == "completed" and j, 20, "the job to complete"
    )
    assert done.attempts == 1
    assert runs.read_text() == "1\n", "the job was run again"
    assert "taken for dead" not in log_path.read_text()
    assert "its runner was lost" not in outside.log()


# -- item 2: a frozen runner resumes after another has completed its job


def test_a_resumed_frozen_runner_writes_no_output_over_the_newer_attempt(
    queue: Queue,
    target: str,
    cli: Cli,  # noqa: F811
    start_runner: StartRunner,  # noqa: F811
) -> None:
    queue.set_config("lease_seconds", 2)
    command = (
        'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then'
        ' i=0; while [ $i -lt 100 ]; do echo "first $i"; sleep 0.1; i=$((i + 1)); done;'
        " else echo second; fi"
    )
    queue.enqueue(command, id="long", max_retries=3)
    first = start_runner()
    first.logged("started long")
    wait_until(lambda: b"first" in queue.output("long"), 10, "attempt 1's output in the store")
    first.freeze(target)

    second = start_runner()
    done = wait_until(
        lambda: (j := queue.get("long")).state == "completed" and j, 30, "attempt 2 to complete"
    )
    assert done.attempts == 2
    assert queue.output("long") == b"second\n"

    # Frozen past its lease on this host, its job was killed before it ran again (never two
    # attempts at once), by the runner that took it over.
    log = second.log()
    assert log.index("process(es) of lost jobs") < log.index("started long (attempt 2)")
    first.send(signal.SIGCONT)
    first.logged("finished long (exit 137) but it is no longer ours", 20)
    wait_beats(queue, first.pid)  # its housekeeping, output sync included, has run since

    job = queue.get("long")
    assert (job.state, job.attempts) == ("completed", 2)
    assert ok(cli("logs", "long")) == "second\n"
    assert "first" not in ok(cli("logs", "long"))
    assert "completed long" in second.log()
    assert "completed long" not in first.log()


def test_a_resumed_frozen_runner_writes_no_result_over_the_newer_attempt(
    queue: Queue,
    target: str,
    cli: Cli,  # noqa: F811
    start_runner: StartRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    queue.set_config("lease_seconds", 2)
    pid_file, go = tmp_path / "pid", tmp_path / "go"
    command = (
        f'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then echo $$ > {pid_file};'
        f" until [ -e {go} ]; do echo first; sleep 0.1; done; exit 3;"
        " else echo second; fi"
    )
    queue.enqueue(command, id="short", max_retries=3)
    first = start_runner()
    first.logged("started short")
    job_pid = read_pid(pid_file)
    wait_until(lambda: b"first" in queue.output("short"), 10, "attempt 1's output in the store")
    first.freeze(target)
    go.touch()  # attempt 1 ends while its runner is frozen: its result waits to be written
    wait_until(lambda: not alive(job_pid), 10, "attempt 1 to end")

    start_runner()
    wait_until(lambda: queue.get("short").state == "completed", 30, "attempt 2 to complete")

    first.send(signal.SIGCONT)
    first.logged("finished short (exit 3) but it is no longer ours", 20)
    wait_beats(queue, first.pid)

    job = queue.get("short")
    assert (job.state, job.attempts, job.exit_code) == ("completed", 2, 0)
    assert ok(cli("logs", "short")) == "second\n"


# -- item 3: a cancelled, purged job's late output


def test_a_purged_jobs_late_output_does_not_reach_a_new_job_with_its_id(
    queue: Queue,
    target: str,
    cli: Cli,  # noqa: F811
    start_runner: StartRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    queue.set_config("lease_seconds", 3)  # a heartbeat every tick: ticks can be counted
    pid_file = tmp_path / "pid"
    stubborn = f"echo $$ > {pid_file}; trap '' TERM; while :; do echo old; sleep 0.1; done"
    ok(cli("enqueue", "--id", "j", "--command", stubborn))
    runner = start_runner()
    runner.logged("started j")
    job_pid = read_pid(pid_file)
    wait_until(lambda: b"old" in queue.output("j"), 10, "the old job's output in the store")

    # The runner is late (frozen) while the job is cancelled and purged; the job goes on
    # printing, so its runner has new output to copy when it resumes. The purge keeps the job
    # while its cancelled attempt's processes live: its id is not free for a new job yet.
    runner.freeze(target)
    ok(cli("cancel", "j"))
    ok(cli("purge", "--state", "cancelled", "--older-than", "0", "--yes"))
    taken = cli("enqueue", "--id", "j", "--delay", "1h", "--command", "echo new")
    assert taken.returncode == 1
    assert "already exists" in taken.stderr

    runner.send(signal.SIGCONT)
    runner.logged("killing j: cancelled or no longer ours")
    wait_until(lambda: not alive(job_pid), 10, "the old job to be killed")
    wait_until(lambda: queue.get("j").lease_owner is None, 10, "its runner to report it gone")
    ok(cli("purge", "--state", "cancelled", "--older-than", "0", "--yes"))
    ok(cli("enqueue", "--id", "j", "--delay", "1h", "--command", "echo new"))  # the id is free
    assert ok(cli("logs", "j")) == "", "the purge left the old output behind"
    wait_beats(queue, runner.pid)  # its output sync has run since

    assert ok(cli("logs", "j")) == ""
    job = queue.get("j")
    assert (job.state, job.command, job.attempts) == ("pending", "echo new", 0)


# -- item 4: a runner never reaps its own leases


@contextmanager
def store_out(target: str) -> Iterator[None]:
    """The store out of reach while inside. SQLite: another process holds an exclusive
    transaction, so every write waits (as on a stalled disk). PostgreSQL: the database refuses
    connections and the open ones are cut, so every call fails until it is back."""
    if target.startswith("postgresql://"):
        import psycopg

        from tests.pg import SERVER

        name = urlsplit(target).path.lstrip("/")
        with psycopg.connect(SERVER, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                    (name,),
                )
                yield
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        return
    conn = sqlite3.connect(target, timeout=30, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def test_a_store_outage_longer_than_the_lease_does_not_reap_the_runners_own_job(
    queue: Queue,
    target: str,
    start_runner: StartRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    lease_s = 2
    queue.set_config("lease_seconds", lease_s)
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="own", max_retries=0)
    runner = start_runner()
    runner.logged("started own")
    wait_until(runs.exists, 10, "the job to start")
    lease_end_ms = queue.get("own").lease_expires_at_ms
    assert lease_end_ms is not None

    with store_out(target):
        blocked_at = time.time()
        # Out for longer than the lease, and than the lease its last write (a heartbeat begun
        # up to a tick into the outage) can have set.
        wait_until(
            lambda: time.time() > max(blocked_at + lease_s + 2, lease_end_ms / 1000 + 1),
            15,
            "the outage to outlast the lease",
            step=0.1,
        )
    # Watched through the store itself: a reader (`status`) takes a runner silent for
    # STALE_LEASES leases for dead, which is right, and not the subject here.
    store = open_store(target)
    try:
        wait_beats(store, runner.pid, 3)  # it has reaped expired leases, after the outage, twice
        owner = runner_of(store, runner.pid)
    finally:
        store.close()
    job = queue.get("own")
    assert owner is not None
    assert (job.state, job.attempts, job.lease_owner) == ("processing", 1, owner.id)
    go.touch()
    done = wait_until(
        lambda: (j := queue.get("own")).state == "completed" and j, 20, "the job to complete"
    )
    assert done.attempts == 1
    assert runs.read_text() == "1\n"
    assert "its runner was lost" not in runner.log()
    assert "no longer ours" not in runner.log()


def test_a_store_outage_does_not_delay_a_jobs_timeout(
    queue: Queue,
    target: str,
    start_runner: StartRunner,  # noqa: F811
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    pid_file = tmp_path / "pid"
    # Heartbeats every half second: the runner surely writes to the store during the outage.
    queue.set_config("lease_seconds", 1.5)
    queue.enqueue(f"echo $$ > {pid_file}; exec sleep 60", id="slow", timeout=1, max_retries=0)
    runner = start_runner()
    runner.logged("started slow")
    job_pid = read_pid(pid_file)
    with store_out(target):
        began = time.monotonic()
        # its timeout (1 s), the kill's grace (1 s) and a loop turn, while the store is out
        wait_until(
            lambda: not alive(job_pid) or time.monotonic() - began > 15, 20, "the kill", step=0.05
        )
        assert not alive(job_pid), "the job outlived its timeout while the store was out"
    done = wait_until(lambda: (j := queue.get("slow")).state == "dead" and j, 20, "the job to end")
    assert "timed out" in (done.last_error or "")


@pytest.mark.backends("sqlite")  # on PostgreSQL the store's clock is the database's
def test_a_wall_clock_step_forward_does_not_reap_the_runners_own_job(
    queue: Queue,
    start_runner: StartRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    lease_s = 2
    queue.set_config("lease_seconds", lease_s)
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="own", max_retries=0)
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    runner = start_runner(env=stepped_clock(offset))
    runner.logged("started own")
    wait_until(runs.exists, 10, "the job to start")
    lease_end_ms = queue.get("own").lease_expires_at_ms
    assert lease_end_ms is not None

    step_s = 5 * lease_s
    offset.write_text(f"+{step_s}\n")
    # Its heartbeat, now stamped by the stepped clock, shows it has seen the step.
    wait_until(
        lambda: (r := runner_of(queue, runner.pid)) and r.heartbeat_at_ms > lease_end_ms + 3000,
        15,
        "the runner to see its clock step",
    )
    wait_beats(queue, runner.pid, 3)

    job = queue.get("own")
    assert (job.state, job.attempts) == ("processing", 1)
    go.touch()
    done = wait_until(
        lambda: (j := queue.get("own")).state == "completed" and j, 20, "the job to complete"
    )
    assert done.attempts == 1
    assert runs.read_text() == "1\n"
    assert "its runner was lost" not in runner.log()
    assert "no longer ours" not in runner.log()


@pytest.mark.backends("sqlite")  # on PostgreSQL the store's clock is the database's
def test_a_wall_clock_step_of_the_whole_host_does_not_make_readers_reap_a_live_runner(
    queue: Queue,
    start_runner: StartRunner,  # noqa: F811
    process_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    lease_s = 30  # the default: a heartbeat every 10 s, dead to readers after 60 s of silence
    queue.set_config("lease_seconds", lease_s)
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="own", max_retries=0)
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    clock = stepped_clock(offset)  # one clock for the runner and the reader: one host
    runner = start_runner(env=clock)
    runner.logged("started own")
    wait_until(runs.exists, 10, "the job to start")

    offset.write_text(f"+{3 * lease_s}\n")  # an NTP step, seconds after the runner's last beat
    status = subprocess.run(
        [QUEUECTL, "status", "--json"],
        env={**process_env, **clock},
        capture_output=True,
        text=True,
        timeout=60,
    )
    shown = {r["pid"] for r in json.loads(ok(status))["runners"]}
    go.touch()
    done = wait_until(
        lambda: (j := queue.get("own")).state not in ("pending", "processing") and j,
        20,
        "the job to end",
    )
    assert runner.pid in shown, "a live runner of this host shown as gone"
    assert (done.state, done.attempts) == ("completed", 1)
    assert "no longer ours" not in runner.log()


# -- item 6: a runner of another host that went silent


def test_a_frozen_runner_of_another_host_is_shown_lost_and_not_waited_for(
    queue: Queue,
    target: str,
    cli: Cli,  # noqa: F811
    start_runner: StartRunner,  # noqa: F811
    tmp_path: Path,
) -> None:
    queue.set_config("lease_seconds", 2)
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="far", max_retries=0)
    remote = start_runner(env={"QUEUECTL_HOSTNAME": "other-host"})
    remote.logged("started far")
    assert remote.pid in {r["pid"] for r in json.loads(ok(cli("worker", "list", "--json")))}
    remote.freeze(target)

    def listed() -> dict[int, str]:
        return {r["pid"]: r["state"] for r in json.loads(ok(cli("worker", "list", "--json")))}

    wait_until(
        lambda: listed().get(remote.pid) == "lost", 20, "the silent runner to be shown as lost"
    )
    assert json.loads(ok(cli("status", "--json")))["runners"] == []
    assert queue.get("far").state == "processing", "a reader recovered a job"

    began = time.monotonic()
    ok(cli("worker", "stop", "--timeout", "10"))
    assert time.monotonic() - began < 8, "worker stop waited for the lost runner"

    start_runner()  # the first runner up recovers the job
    job = wait_until(lambda: (j := queue.get("far")).state == "dead" and j, 10, "the recovery")
    assert job.last_error == "worker lost"


def test_a_stale_runner_row_is_shown_lost_and_readers_leave_it_to_runners(
    queue: Queue,
    target: str,
    cli: Cli,  # noqa: F811
) -> None:
    lease_s = queue.config()["lease_seconds"]
    long_ago = int(time.time() * 1000) - round(10 * lease_s * 1000)
    store = open_store(target, FakeClock(long_ago))
    try:
        stale = Runner(
            id="other-host-4242-beef",
            host="other-host",
            pid=4242,
            workers=2,
            queues=None,
            started_at_ms=long_ago,
            heartbeat_at_ms=long_ago,
        )
        store.register_runner(stale)
        assert [r.id for r in store.runners()] == ["other-host-4242-beef"]
        assert json.loads(ok(cli("status", "--json")))["runners"] == []
        listed = json.loads(ok(cli("worker", "list", "--json")))
        assert [(r["id"], r["state"]) for r in listed] == [("other-host-4242-beef", "lost")]
        assert [r.id for r in store.runners()] == ["other-host-4242-beef"], "a reader reaped"
    finally:
        store.close()
