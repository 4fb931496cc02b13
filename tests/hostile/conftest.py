"""Fixtures of the hostile suite: version 3's features attacked from outside, through the
installed CLI, the HTTP API and real runners on both stores.

Most tests here share one store and one real runner per module and backend (`shared`): each
test keeps to jobs, batches and queues of its own names, so that they never meet. Tests that
need a runner of their own (one without cgroups, one they kill) use `start_runner` on the
per-test `target` as the other folders do.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from tests.support.cli import QUEUECTL
from tests.support.runners import (  # noqa: F401 - fixtures used by this folder's tests
    TAG_VAR,
    cli,
    process_env,
    start_runner,
    tag,
    tagged,
    wait_until,
)

BACKENDS = ("sqlite", "postgres")


@dataclass
class Shared:
    """A store of the module's, a runner on it, and the CLI on it."""

    target: str
    queue: Queue
    env: dict[str, str]
    runner: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [QUEUECTL, *args],
            capture_output=True,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=60,
            check=False,
            **kwargs,
        )

    def json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def finished(self, *job_ids: str, timeout: float = 30) -> None:
        try:
            wait_until(
                lambda: all(self.queue.get(j).finished for j in job_ids),
                timeout,
                f"{', '.join(job_ids)} to finish",
            )
        except AssertionError as exc:
            states = {j: (self.queue.get(j).state, self.queue.explain(j)) for j in job_ids}
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise AssertionError(f"{exc}\n{states}\nthe runner's last lines:\n{tail}") from None


@pytest.fixture(scope="module", params=BACKENDS)
def shared_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    chosen = request.config.getoption("backend") or list(BACKENDS)
    if request.param not in chosen:
        pytest.skip(f"--backend leaves out {request.param}")
    if request.param == "sqlite":
        yield str(tmp_path_factory.mktemp("shared") / "queue.db")
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def shared(shared_target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One runner of four workers on the module's store, for every test of the module."""
    module_tag = uuid.uuid4().hex
    env = {**os.environ, "QUEUECTL_DB": shared_target, TAG_VAR: module_tag}
    for name in ("QUEUECTL_DEBUG", "QUEUECTL_HOSTNAME", "QUEUECTL_API_TOKEN"):
        env.pop(name, None)
    log = tmp_path_factory.mktemp("runner") / "runner.log"
    queue = Queue(shared_target)
    with open(log, "wb") as out:
        runner = subprocess.Popen(
            [QUEUECTL, "worker", "start", "-n", "4"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: runner.poll() is None and runner.pid in {r.pid for r in queue.runners()},
            20,
            "the module's runner to register",
        )
        yield Shared(shared_target, queue, env, runner, log)
    finally:
        runner.kill()
        runner.wait(10)
        for pid in tagged(module_tag):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        queue.close()
