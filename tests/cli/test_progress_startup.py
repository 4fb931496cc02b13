"""`queuectl progress`, run inside jobs, loads no more than `enqueue` does but its own small
modules and the store's exchange flow (which fences a report as it fences an attempt's end):
deterministic, not timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from queuectl import Queue
from tests.cli.test_startup import HEAVY, modules_loaded_by


def test_progress_loads_what_enqueue_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "queue.db"
    with Queue(str(db)) as queue:
        job = queue.enqueue("sleep 1").id
        [claim] = queue._store.finish_and_claim("test-runner", [], 1, None, 30).claims
    enqueued = modules_loaded_by(db, "enqueue", "--command", "true")
    monkeypatch.setenv("QUEUECTL_JOB_ID", job)
    monkeypatch.setenv("QUEUECTL_CLAIM_TOKEN", str(claim.token))
    reported = modules_loaded_by(db, "progress", "3/4", "nearly")
    exchange = modules_of("queuectl.store.exchange")
    assert sorted(reported - enqueued - exchange) == ["queuectl.cli.progress", "queuectl.progress"]
    assert sorted({name.split(".")[0] for name in reported} & set(HEAVY)) == []
    with Queue(str(db)) as queue:
        assert queue.get(job).to_dict()["progress"]["done"] == 3


def modules_of(module: str) -> set[str]:
    """What importing `module` loads, in a fresh interpreter."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(found.stdout))
