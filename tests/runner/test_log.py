"""The runner's event log: one line per job event, readable, or JSON lines with --log-json."""

from __future__ import annotations

import json
import signal

from queuectl import Job, Queue
from tests.support.runners import wait_until


def run_a_success_and_a_failure(queue: Queue, start_runner, flag: str) -> tuple[Job, Job, str]:
    """A runner started with `flag` runs one job that succeeds and one that dies; its log."""
    ok = queue.enqueue("true")
    bad = queue.enqueue("exit 3", max_retries=0)
    runner = start_runner(flag)
    wait_until(lambda: queue.get(ok.id).finished and queue.get(bad.id).finished, 15, "both jobs")
    runner.send(signal.SIGTERM)
    assert runner.wait() == 0
    return ok, bad, runner.log()


def test_log_json_gives_one_object_per_job_event(queue: Queue, start_runner) -> None:
    ok, bad, log = run_a_success_and_a_failure(queue, start_runner, "--log-json")

    events = [json.loads(line) for line in log.splitlines()]
    assert all({"time", "event", "message"} <= set(e) for e in events)
    kinds = [(e["event"], e.get("job")) for e in events]
    assert kinds[0][0] == "runner_started"
    assert kinds[-1][0] == "runner_stopped"
    assert ("started", ok.id) in kinds
    assert ("completed", ok.id) in kinds
    assert ("started", bad.id) in kinds
    assert ("dead", bad.id) in kinds
    dead = next(e for e in events if e["event"] == "dead")
    assert (dead["exit_code"], dead["attempt"]) == (3, 1)


def test_quiet_keeps_only_runner_events_and_dead_jobs(queue: Queue, start_runner) -> None:
    ok, bad, log = run_a_success_and_a_failure(queue, start_runner, "--quiet")

    lines = log.splitlines()
    assert not any(ok.id in line for line in lines)
    assert any(f"dead {bad.id}" in line for line in lines)
    assert "started" in lines[0]
    assert "stopped" in lines[-1]
