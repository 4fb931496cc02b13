"""History and acting on many jobs with real runners, as a hostile user drives them: cancel
--all while jobs run, requeue of a job cancelled while it waited on a dependency."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from tests.support.runners import alive
from tests.workflow.conftest import Cli, all_in, ok, wait_until


def test_cancel_all_without_yes_off_a_terminal_kills_running_jobs_and_keeps_their_output(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli, tmp_path: Path
) -> None:
    for name in ("one", "two"):
        script = f"echo $$ > {tmp_path}/{name}.pid; echo '{name} started'; exec sleep 600"
        ok(cli("enqueue", "--id", name, "--command", script))
    ok(cli("enqueue", "--id", "parked", "--queue", "parked", "--command", "true"))
    start_runner("--count", "2", "--queue", "default")

    def pids() -> list[int] | None:
        files = [tmp_path / f"{name}.pid" for name in ("one", "two")]
        if not all(f.exists() and f.read_text().strip() for f in files):
            return None
        return [int(f.read_text()) for f in files]

    running = wait_until(pids, 20, "both jobs to start")
    # stdin is no terminal here: nothing to ask on, so it must not wait for an answer
    result = cli("cancel", "--all", timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "cancelled 3 jobs\n"
    wait_until(lambda: not any(alive(pid) for pid in running), 20, "the commands to be killed")
    for name in ("one", "two"):
        wait_until(lambda n=name: queue.output(n) != b"", 20, f"{name}'s output to be kept")
        assert ok(cli("logs", name)) == f"{name} started\n", "a cancelled attempt's output"
        [attempt] = json.loads(ok(cli("show", name, "--json")))["history"]
        assert (attempt["error"], attempt["exit_code"]) == ("cancelled", None)
        assert attempt["finished_at"] is not None
    assert queue.get("parked").state == "cancelled"


def test_a_job_cancelled_while_it_waited_runs_when_requeued(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli
) -> None:
    ok(cli("enqueue", "--id", "first", "--command", "true"))
    ok(cli("enqueue", "--id", "then", "--after", "first", "--command", "echo then"))
    ok(cli("cancel", "then"))
    start_runner()
    wait_until(all_in(queue, "completed", "first"), 20, "first to complete")
    assert ok(cli("requeue", "then")) == "then\n"
    wait_until(all_in(queue, "completed", "then"), 20, "the requeued dependant to run")
    assert ok(cli("logs", "then")) == "then\n"
