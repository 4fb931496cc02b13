"""Reads only read: with a runner dead and none up, `status`, `explain`, `list`, `worker list`,
the API's GETs and /metrics show it as lost and change nothing (its job stays processing, its
leftover process runs on); `queuectl worker recover` kills that process and recovers the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.store import open_store
from tests.reliability.conftest import Runners
from tests.reliability.test_leftovers import watchdog_of
from tests.support.runners import alive, read_pid, wait_until

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def read_everything(cli: Cli, target: str, job_id: str) -> None:
    """Every reader, as a user or a scraper would call it."""
    for args in (
        ["status"],
        ["status", "--json"],
        ["explain", job_id],
        ["show", job_id],
        ["list", "--json"],
        ["worker", "list"],
        ["worker", "list", "--json"],
    ):
        ok(cli(*args))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        from fastapi.testclient import TestClient

    from queuectl.api.app import create_app

    token = "recover-test-token-0123456789"
    with TestClient(create_app(target, token), base_url="http://127.0.0.1:8765") as client:
        headers = {"Authorization": f"Bearer {token}"}
        for path in ("/api/status", f"/api/jobs/{job_id}", "/api/jobs", "/metrics"):
            response = client.get(path, headers=headers)
            assert response.status_code == 200, (path, response.text)


@pytest.mark.timeout(120)
def test_readers_change_nothing_and_worker_recover_recovers(
    target: str, runners: Runners, tmp_path: Path, cli: Cli
) -> None:
    pid_file = tmp_path / "pid"
    queue = Queue(target)
    first = runners.start(target, workers=1)
    queue.enqueue(f"echo $$ > {pid_file}; exec sleep 60", id="first", max_retries=0)
    job_pid = read_pid(pid_file, 30)

    # Its watchdog is frozen: nothing but a recovery can kill the job's process now.
    watchdog = watchdog_of(first.pid)
    os.kill(watchdog, signal.SIGSTOP)
    try:
        first.send(signal.SIGKILL)
        first.wait(10)
        for _ in range(2):
            read_everything(cli, target, "first")
        assert queue.get("first").state == "processing", "a reader recovered the job"
        assert alive(job_pid), "a reader killed the dead runner's leftover process"
        store = open_store(target)
        try:
            assert [r.pid for r in store.runners()] == [first.pid], "a reader unregistered it"
        finally:
            store.close()
        listed = json.loads(ok(cli("worker", "list", "--json")))
        assert [(r["pid"], r["state"]) for r in listed] == [(first.pid, "lost")]
        assert "lost" in ok(cli("worker", "list"))
        assert "worker recover" in ok(cli("explain", "first"))

        said = ok(cli("worker", "recover"))
        assert said.count("\n") == 1, said
        assert "recovered 1 job" in said, said
        assert "1 lost runner" in said, said
        assert not alive(job_pid), "worker recover left the leftover process running"
        job = queue.get("first")
        assert (job.state, job.last_error) == ("dead", "worker lost")
        assert json.loads(ok(cli("worker", "list", "--json"))) == []
        assert ok(cli("worker", "recover")).strip() == "nothing to recover"
    finally:
        os.kill(watchdog, signal.SIGCONT)
        queue.close()


@pytest.mark.timeout(120)
def test_a_lost_attempt_is_retried_as_its_queues_default_says(
    target: str, runners: Runners, cli: Cli
) -> None:
    """A recovered attempt is a failure like any other: the job's own max_retries, else its
    queue's default, else the configured one, decide whether it runs again."""
    queue = Queue(target)
    try:
        queue.set_config("max_retries", 0)
        queue.enqueue("exec sleep 60", id="lenient", queue="lenient")  # enqueued with 0
        queue.set_config("max_retries", 3)
        queue.set_queue_defaults("lenient", max_retries=2)
        queue.set_queue_defaults("strict", max_retries=0)
        queue.enqueue("exec sleep 60", id="strict", queue="strict")
        queue.enqueue("exec sleep 60", id="batched", queue="strict", batch="b")
        queue.enqueue("exec sleep 60", id="own", queue="strict", max_retries=1)
        runner = runners.start(target, workers=4)
        wait_until(
            lambda: queue.status()["counts"]["processing"] == 4, 30, "the four jobs to start"
        )
        runner.send(signal.SIGKILL)
        runner.wait(10)
        assert "recovered 4 jobs" in ok(cli("worker", "recover"))
        found = {job_id: queue.get(job_id) for job_id in ("lenient", "strict", "batched", "own")}
        assert {job_id: job.state for job_id, job in found.items()} == {
            "lenient": "failed",
            "strict": "dead",
            "batched": "dead",
            "own": "failed",
        }
        assert {job.last_error for job in found.values()} == {"worker lost"}
    finally:
        queue.close()
