"""Real runner processes on a test's store and /proc checks, shared by every folder whose tests
start runners (runner, workflow, reliability, hardening, store).

Every process a test starts carries QUEUECTL_TEST_TAG=<unique> in its environment; runners,
their watchdogs, the jobs and the jobs' children inherit it, so the finalizer can SIGKILL
whatever is left, whatever the test did to it (SIGSTOP, --detach, a lost runner).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import pytest

from queuectl import Queue
from queuectl.store import Runner, Store
from tests.support.cli import QUEUECTL

T = TypeVar("T")
TAG_VAR = "QUEUECTL_TEST_TAG"

#: A job that runs until the test creates `go` beside it, and counts its runs in `runs`.
GATED = 'echo "$QUEUECTL_ATTEMPT" >> {runs}; until [ -e {go} ]; do sleep 0.05; done'


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 15.0,
    what: str = "the condition",
    step: float = 0.02,
) -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(step)


# -- processes, as /proc sees them


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has exited: it only waits for its parent to reap it)."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def group_members(pgid: int) -> list[int]:
    """The live processes of process group `pgid`."""
    members = []
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            members.append(pid)
    return members


def tagged(tag: str) -> list[int]:
    """Live processes whose environment carries this test's tag."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
        except OSError:
            continue
        if needle in environ and alive(pid):
            found.append(pid)
    return found


def read_pid(path: Path, timeout: float = 10.0) -> int:
    """A pid that a job wrote to `path` (`echo $$ > path`), once it is there."""

    def written() -> int | None:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None

    return wait_until(written, timeout, f"a pid in {path}")


def in_transaction(target: str) -> bool:
    """Whether another process holds a transaction open on the store (a write, on SQLite)."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state IS NOT NULL AND state <> 'idle'"
            ).fetchone()
        return bool(row and row[0])
    conn = sqlite3.connect(target, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


# -- runners


class RunnerProcess:
    """A `queuectl worker start` process started by a test."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 10.0) -> int:
        """Its exit code, once it has exited."""
        return self.process.wait(timeout)

    def freeze(self, target: str) -> None:
        """SIGSTOP it between transactions: frozen inside one, it would block the whole store."""
        for _ in range(100):
            self.send(signal.SIGSTOP)
            wait_until(lambda: (_stat(self.pid) or ["T"])[0] == "T", 5, f"{self.pid} to stop")
            if not in_transaction(target):
                return
            self.send(signal.SIGCONT)
            time.sleep(0.01)  # not the thing under test: a moment to finish its transaction
        raise AssertionError(f"runner {self.pid} was always inside a transaction")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged(self, text: str, timeout: float = 10.0) -> None:
        """Wait until its log holds `text` (`started JOB` is logged once the watchdog knows)."""
        wait_until(lambda: text in self.log(), timeout, f"{text!r} in the log of runner {self.pid}")


def runner_of(source: Queue | Store, pid: int) -> Runner | None:
    """The runner with this pid: live as readers see it (Queue), or as stored (Store)."""
    return next((r for r in source.runners() if r.pid == pid), None)


def wait_beats(source: Queue | Store, pid: int, beats: int = 2, timeout: float = 20.0) -> None:
    """Wait until the runner `pid` has heartbeaten `beats` more times: it has then run at least
    `beats - 1` whole housekeeping ticks (beat, reap, output sync) since this call."""
    seen: list[int] = []

    def beaten() -> bool:
        runner = runner_of(source, pid)
        if runner is None:
            return False  # a resumed runner taken for dead is not yet registered again
        if not seen or runner.heartbeat_at_ms > seen[-1]:
            seen.append(runner.heartbeat_at_ms)
        return len(seen) > beats

    wait_until(beaten, timeout, f"{beats} heartbeats of runner {pid}", step=0.05)


@pytest.fixture(autouse=True)
def tag() -> Iterator[str]:
    """This test's tag; at teardown (last of all), every live process carrying it is SIGKILLed."""
    value = uuid.uuid4().hex
    yield value
    for pid in tagged(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not tagged(value), 5, "the test's processes to die")


@pytest.fixture
def process_env(target: str, tag: str) -> dict[str, str]:
    """The environment of every process the test starts: its store and its tag."""
    env = {**os.environ, "QUEUECTL_DB": target, TAG_VAR: tag}
    for name in ("QUEUECTL_DEBUG", "QUEUECTL_HOSTNAME"):
        env.pop(name, None)
    return env


@pytest.fixture
def cli(process_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`cli("status", "--json")`: the installed entry point on this test's store, tagged."""

    def call(
        *args: str, timeout: float = 60, text: bool = True, **kwargs: object
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            [QUEUECTL, *args],
            capture_output=True,
            text=text,
            env=process_env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
            **kwargs,
        )

    return call


@pytest.fixture
def start_runner(
    queue: Queue, process_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., RunnerProcess]]:
    """`start_runner("-n", "4")` starts a runner and returns once it is registered.

    `env` adds variables (QUEUECTL_HOSTNAME=other-host, say). At teardown every runner still
    up is SIGKILLed (and then, by `tag`, what it left behind); the runners' logs are printed
    (pytest shows them when the test failed).
    """
    started: list[RunnerProcess] = []
    logs: list[IO[bytes]] = []

    def start(
        *args: str, env: dict[str, str] | None = None, register: bool = True
    ) -> RunnerProcess:
        log_path = tmp_path / f"runner-{len(started) + 1}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        process = subprocess.Popen(
            [QUEUECTL, "worker", "start", *args],
            env={**process_env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        runner = RunnerProcess(process, log_path)
        started.append(runner)
        if register:

            def registered() -> bool:
                assert process.poll() is None, f"the runner exited early:\n{runner.log()}"
                return process.pid in {r.pid for r in queue.runners()}

            wait_until(registered, 15, f"runner {process.pid} to register")
        return runner

    yield start

    for runner in started:
        if runner.process.poll() is None:
            runner.process.kill()
        runner.process.wait(10)
    for log in logs:
        log.close()
    for runner in started:
        tail = "\n".join(runner.log().splitlines()[-40:])
        print(f"--- runner {runner.pid} (exit {runner.process.returncode}), last lines:\n{tail}")
