"""`queuectl reset` and `status --since` through the installed entry point (SPEC 9.10)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from queuectl import Queue
from queuectl.store import Store
from tests.cli.conftest import make
from tests.cli.terminal import in_terminal
from tests.support.cli import QUEUECTL

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def fill(cli: Cli, store: Store) -> None:
    make(store, "done", "completed")
    make(store, "gone", "dead")
    make(store, "waiting", "pending")
    ok(cli("hook", "add", "h", "--on", "dead", "--command", "true"))
    ok(cli("schedule", "add", "nightly", "--every", "1h", "--command", "true"))
    ok(cli("queue", "pause", "q-waiting"))
    ok(cli("config", "set", "max_retries", "9"))


def job_count(store: Store) -> int:
    return len(store.list_jobs().jobs)


@pytest.fixture
def runner(target: str) -> Iterator[subprocess.Popen[bytes]]:
    """A real runner on the store, up until the test ends."""
    env = {**os.environ, "QUEUECTL_DB": target}
    process = subprocess.Popen(
        [QUEUECTL, "worker", "start", "--queue", "nothing"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    with Queue(target) as queue:
        deadline = time.monotonic() + 15
        while not queue.runners():
            assert process.poll() is None, "the runner exited"
            assert time.monotonic() < deadline, "no runner came up"
            time.sleep(0.02)
    yield process
    process.kill()
    process.wait(10)


def test_reset_refuses_without_yes_off_a_terminal(cli: Cli, store: Store) -> None:
    fill(cli, store)
    refused = cli("reset", stdin=subprocess.DEVNULL)
    assert refused.returncode == 2
    assert refused.stderr == "error: refusing to delete without --yes (stdin is not a terminal)\n"
    assert job_count(store) == 3


def test_reset_is_refused_while_a_runner_is_up(
    cli: Cli, store: Store, runner: subprocess.Popen[bytes]
) -> None:
    fill(cli, store)
    refused = cli("reset", "--yes", "--all")
    assert refused.returncode == 1
    assert "queuectl worker stop" in refused.stderr
    assert job_count(store) == 3
    assert [h.name for h in store.hooks()] == ["h"]


def test_reset_asks_with_the_counts_on_a_terminal(cli: Cli, store: Store, target: str) -> None:
    fill(cli, store)
    declined = in_terminal(target, "reset", "--all", typed="n\n")
    assert declined.returncode == 1
    assert "delete 3 jobs with their history and output, 1 schedule, 1 hook" in declined.stderr
    assert job_count(store) == 3
    accepted = in_terminal(target, "reset", typed="y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert "delete 3 jobs with their history and output?" in accepted.stderr
    assert job_count(store) == 0


def test_plain_reset_keeps_the_settings(cli: Cli, store: Store) -> None:
    fill(cli, store)
    assert ok(cli("reset", "--yes")) == ""
    assert job_count(store) == 0
    assert store.history("done") == []
    assert [h.name for h in store.hooks()] == ["h"]
    assert [s.name for s in store.schedules()] == ["nightly"]
    assert store.queues() == {"q-waiting": True}
    assert store.config()["max_retries"] == 9


def test_reset_all_restores_the_defaults(cli: Cli, store: Store) -> None:
    from queuectl.config import DEFAULTS

    fill(cli, store)
    done = cli("reset", "--yes", "--all")
    assert done.returncode == 0, done.stderr
    assert "deleted 3 jobs" in done.stderr
    assert job_count(store) == 0
    assert (store.hooks(), store.schedules(), store.queues()) == ([], [], {})
    assert store.config() == DEFAULTS


def test_status_since_in_the_table_and_json(cli: Cli, store: Store) -> None:
    make(store, "done", "completed")
    make(store, "gone", "dead")
    make(store, "stopped", "cancelled")
    make(store, "waiting", "pending")
    report = json.loads(ok(cli("status", "--since", "10m", "--json")))
    assert report["since"] == {
        "seconds": 600,
        "completed": 1,
        "dead": 1,
        "cancelled": 1,
        "cpu_seconds": 0.0,
    }
    assert "since" not in json.loads(ok(cli("status", "--json")))
    table = ok(cli("status", "--since", "90s"))
    assert "finished in the last 90s" in table
    lines = table.splitlines()
    header = next(n for n, line in enumerate(lines) if "finished in the last" in line)
    assert lines[header + 1].split()[:3] == ["completed", "dead", "cancelled"]
    assert lines[header + 2].split()[:3] == ["1", "1", "1"]
    bad = cli("status", "--since", "lately")
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: since")
