"""A runner host whose wall clock is hours off changes nothing on PostgreSQL: every instant the
store writes comes from the database's clock (libfaketime shifts the runner's clock)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from queuectl import Queue
from tests.support.runners import RunnerProcess, wait_until

HOURS_OFF = 5


def faked_clock(hours: int) -> dict[str, str]:
    """The environment that shifts a process's wall clock (not its monotonic clock)."""
    import libfaketime

    library = os.path.join(
        os.path.dirname(libfaketime.__file__), "vendor", "libfaketime", "src", "libfaketime.so.1"
    )
    return {
        "LD_PRELOAD": library,
        "FAKETIME": f"{hours:+d}h",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }


@pytest.mark.backends("postgres")  # one SQLite file is one host, so one clock
def test_a_runner_hours_ahead_writes_the_database_instants(
    queue: Queue, start_runner: Callable[..., RunnerProcess]
) -> None:
    env = faked_clock(HOURS_OFF)
    shown = subprocess.run(
        [sys.executable, "-c", "import time; print(time.time())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    assert float(shown.stdout) * 1000 - queue.now_ms() > (HOURS_OFF - 0.5) * 3_600_000
    queue.enqueue("true", id="ok")
    queue.enqueue("exit 3", id="fails", max_retries=1)
    start_runner(env=env)

    ok = wait_until(lambda: (j := queue.get("ok")).state == "completed" and j, 20, "ok")
    failed = wait_until(lambda: (j := queue.get("fails")).state == "failed" and j, 20, "fails")
    now = queue.now_ms()
    for instant in (ok.started_at_ms, ok.finished_at_ms, failed.finished_at_ms):
        assert instant is not None
        assert abs(now - instant) < 60_000, "an instant from the runner's skewed clock"
    assert ok.started_at_ms is not None
    assert ok.finished_at_ms is not None
    assert ok.started_at_ms <= ok.finished_at_ms
    assert failed.finished_at_ms is not None
    # the backoff after the first failure is 2 s from the end of the attempt, on the store's clock
    assert failed.run_at_ms - failed.finished_at_ms == 2000
    (runner,) = queue.runners()
    assert abs(now - runner.heartbeat_at_ms) < 60_000
    assert queue.status()["done_last_minute"] == 1
    assert queue.purge("completed", "1h") == 0, "a result purged as if hours old"
    wait_until(lambda: queue.get("fails").state == "dead", 20, "the retry to run")
