"""Helpers for the workflow suite: real runners on the test's store, the tagged CLI, waits.

Every process a test starts carries QUEUECTL_TEST_TAG=<unique> in its environment; runners,
their watchdogs and the jobs inherit it, so teardown SIGKILLs whatever is left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest

from queuectl import Queue
from tests.conftest import QUEUECTL

T = TypeVar("T")
TAG_VAR = "QUEUECTL_TEST_TAG"
Cli = Callable[..., subprocess.CompletedProcess[str]]


def wait_until(predicate: Callable[[], T], timeout: float = 15.0, what: str = "the condition") -> T:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.05)


def states(queue: Queue, *job_ids: str) -> dict[str, str]:
    return {job_id: queue.get(job_id).state for job_id in job_ids}


def all_in(queue: Queue, state: str, *job_ids: str) -> Callable[[], bool]:
    """A predicate: every named job is in `state`."""
    return lambda: all(s == state for s in states(queue, *job_ids).values())


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one error line of a command that must have been refused with `code`."""
    assert result.returncode == code, f"exit {result.returncode} (want {code}): {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries this test's tag."""
    needle = f"{TAG_VAR}={tag}".encode()
    found = []
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                environ = handle.read().split(b"\0")
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        if needle in environ and stat[stat.rindex(b")") + 2 :][:1] not in (b"Z", b"X"):
            found.append(pid)
    return found


@pytest.fixture(autouse=True)
def tag() -> Iterator[str]:
    """This test's tag; at teardown (last of all) every live process carrying it is SIGKILLed."""
    value = uuid.uuid4().hex
    yield value
    for pid in _tagged(value):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not _tagged(value), 10, "the test's processes to die")


@pytest.fixture
def test_env(target: str, tag: str) -> dict[str, str]:
    """The environment of every process the test starts: its store and its tag."""
    env = {**os.environ, "QUEUECTL_DB": target, TAG_VAR: tag}
    for name in ("QUEUECTL_DEBUG", "QUEUECTL_HOSTNAME"):
        env.pop(name, None)
    return env


@pytest.fixture
def cli(test_env: dict[str, str]) -> Cli:
    """`cli("status", "--json")`: the installed entry point on this test's store, tagged."""

    def call(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # type: ignore[call-overload, no-any-return]
            [QUEUECTL, *args], capture_output=True, text=True, env=test_env,
            stdin=kwargs.pop("stdin", subprocess.DEVNULL), timeout=timeout, **kwargs,
        )  # fmt: skip

    return call


@pytest.fixture
def cli_json(cli: Cli) -> Callable[..., Any]:
    """`cli_json("queue", "list")`: the parsed output of a read command run with --json."""

    def call(*args: str) -> Any:
        return json.loads(ok(cli(*args, "--json")))

    return call


class RunnerProcess:
    """A `queuectl worker start` process started by a test."""

    def __init__(self, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_runner(
    queue: Queue, test_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., RunnerProcess]]:
    """`start_runner("--count", "4")` starts a runner and returns once it is registered.

    `env` adds variables (QUEUECTL_HOSTNAME=other-host). At teardown every runner still up is
    SIGKILLed (then, by `tag`, what it left behind), and the runners' logs are printed.
    """
    started: list[RunnerProcess] = []
    logs: list[IO[bytes]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> RunnerProcess:
        log_path = tmp_path / f"runner-{len(started) + 1}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
        logs.append(log)
        process = subprocess.Popen(
            [QUEUECTL, "worker", "start", *args], env={**test_env, **(env or {})},
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        runner = RunnerProcess(process, log_path)
        started.append(runner)

        def registered() -> bool:
            assert process.poll() is None, f"the runner exited early:\n{runner.log()}"
            return process.pid in {r.pid for r in queue.runners()}

        wait_until(registered, 20, f"runner {process.pid} to register")
        return runner

    yield start

    for runner in started:
        if runner.process.poll() is None:
            runner.process.kill()
        runner.process.wait(10)
    for log in logs:
        log.close()
    for runner in started:
        tail = "\n".join(runner.log().splitlines()[-30:])
        print(f"--- runner {runner.pid} (exit {runner.process.returncode}), last lines:\n{tail}")
