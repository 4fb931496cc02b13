"""Unique jobs: concurrent enqueues of one unique_key make one job; a finished job frees it."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from tests.workflow.conftest import Cli, all_in, ok, wait_until

ENQUEUERS = 8

# Each enqueuer loads the CLI first, says it is ready, waits for the barrier file, and only
# then runs `queuectl enqueue`: process start-up does not spread the enqueues apart.
ENQUEUER = """
import importlib, os, sys, time
from queuectl.cli import main
import queuectl.cli.enqueue, queuectl.queue
postgres = os.environ["QUEUECTL_DB"].startswith("postgresql://")
importlib.import_module("queuectl.store." + ("postgres" if postgres else "sqlite"))
ready, barrier = sys.argv[1], sys.argv[2]
open(ready, "w").close()
while not os.path.exists(barrier):
    time.sleep(0.001)
main(sys.argv[3:])
"""


def test_concurrent_enqueues_of_one_unique_key_make_one_job(
    cli: Cli,
    queue: Queue,
    process_env: dict[str, str],
    tmp_path: Path,
    start_runner: Callable[..., Any],
) -> None:
    barrier = tmp_path / "go"
    args = ["enqueue", "--unique-key", "nightly-report", "--command", "true"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", ENQUEUER, str(tmp_path / f"ready-{n}"), str(barrier), *args],
            env=process_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(ENQUEUERS)
    ]
    try:
        wait_until(
            lambda: all((tmp_path / f"ready-{n}").exists() for n in range(ENQUEUERS)),
            30,
            "every enqueuer to be ready",
        )
        barrier.touch()
        results = [process.communicate(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
        # No error; at most the note that no runner is up to run the job.
        assert all(line.startswith("note: no runner serving") for line in err.splitlines()), err
    ids = {out.strip() for out, _ in results}
    assert len(ids) == 1, ids
    [job_id] = ids
    jobs = json.loads(ok(cli("list", "--limit", "0", "--json")))
    assert [(j["id"], j["unique_key"]) for j in jobs] == [(job_id, "nightly-report")]

    # While the job is held, the key still answers with it; once completed, the key is free.
    assert ok(cli(*args)).strip() == job_id
    start_runner()
    wait_until(all_in(queue, "completed", job_id), 15, f"{job_id} to complete")
    again = ok(cli(*args)).strip()
    assert again != job_id
    assert queue.get(again).state in ("pending", "processing", "completed")
    assert queue.get(again).unique_key == "nightly-report"
    assert len(queue.list()) == 2
