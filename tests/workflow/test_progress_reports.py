"""Progress reported by real jobs: `queuectl progress` run inside a job and the file named by
QUEUECTL_PROGRESS_FILE, fenced to the job's running attempt, and shown in its JSON."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from tests.support.cli import QUEUECTL, run
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until

GATE = "until [ -e {go} ]; do sleep 0.05; done"


def progress_of(queue: Queue, job_id: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = queue.get(job_id).to_dict()["progress"]
    return found


def test_progress_command_inside_a_job(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path, target: str
) -> None:
    go = tmp_path / "go"
    job = queue.enqueue(
        f"{QUEUECTL} progress 1/4 first file; sleep 0.3; {QUEUECTL} progress 50% half way; "
        + GATE.format(go=go)
    ).id
    assert progress_of(queue, job) is None
    start_runner()
    report = wait_until(
        lambda: (p := progress_of(queue, job)) and p["message"] == "half way" and p, 20
    )
    assert report["done"] == 50
    assert report["total"] == 100
    assert report["percent"] == 50.0
    assert report["eta_s"] is not None
    assert report["eta_s"] >= 0
    shown = ok(cli("show", job))
    assert "50%" in shown
    assert "half way" in shown
    listed = ok(cli("list"))
    assert "PROGRESS" in listed
    assert "50%" in listed
    status = json.loads(ok(cli("status", "--json")))
    assert status["progress"] == [{"id": job, "queue": "default", "progress": report}]
    assert "half way" in ok(cli("status"))
    follow = subprocess.Popen(
        [QUEUECTL, "logs", "--follow", job],
        env={**os.environ, "QUEUECTL_DB": target},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1)  # it has polled the job a few times: the report is said once
    go.touch()
    _, err = follow.communicate(timeout=30)
    assert err.count("--- progress 50% half way") == 1, err
    wait_until(all_in(queue, "completed", job), 20, "the job")


def test_progress_file_is_read(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    go = tmp_path / "go"
    job = queue.enqueue(
        'echo "1/8 starting" > "$QUEUECTL_PROGRESS_FILE"; sleep 0.2; '
        'echo "3/8 three files" >> "$QUEUECTL_PROGRESS_FILE"; ' + GATE.format(go=go)
    ).id
    start_runner()
    report = wait_until(lambda: (p := progress_of(queue, job)) and p["done"] == 3 and p, 10)
    assert report == {
        "done": 3,
        "total": 8,
        "percent": 37.5,
        "message": "three files",
        "eta_s": report["eta_s"],
    }
    go.touch()
    wait_until(all_in(queue, "completed", job), 20, "the job")


def test_a_later_attempt_starts_without_progress_and_stale_reports_change_nothing(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path, target: str
) -> None:
    go = tmp_path / "go"
    # The first attempt reports and fails; the second waits, silent, for the test.
    job = queue.enqueue(
        f'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then {QUEUECTL} progress 9/10; echo $QUEUECTL_CLAIM_TOKEN '
        f"> {tmp_path}/claim; sleep 1; exit 3; fi; " + GATE.format(go=go),
        max_retries=1,
    ).id
    start_runner()
    wait_until(lambda: (p := progress_of(queue, job)) and p["done"] == 9, 20, "attempt 1's report")
    wait_until(lambda: queue.get(job).state == "processing" and queue.get(job).attempts == 2, 30)
    assert progress_of(queue, job) is None
    old_claim = (tmp_path / "claim").read_text().strip()
    env = {
        **os.environ,
        "QUEUECTL_DB": target,
        "QUEUECTL_JOB_ID": job,
        "QUEUECTL_CLAIM_TOKEN": old_claim,
    }
    refused(run(("progress", "5/10"), target, env=env), 1)
    assert progress_of(queue, job) is None
    go.touch()
    wait_until(all_in(queue, "completed", job), 20, "the job")


def test_bad_reports_are_refused(cli: Cli, queue: Queue, target: str) -> None:
    assert "inside a job" in refused(cli("progress", "1/2"))
    job = queue.enqueue("true").id
    env = {**os.environ, "QUEUECTL_JOB_ID": job, "QUEUECTL_CLAIM_TOKEN": "1"}
    for bad in ("5/0", "3/2", "150%", "half", "-1/4"):
        refused(run(("progress", bad), target, env=env))
    assert json.loads(ok(cli("show", job, "--json")))["progress"] is None
