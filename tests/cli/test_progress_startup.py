"""`queuectl progress`, run inside jobs, loads no more than `enqueue` does (but its own small
modules): deterministic, not timed."""

from __future__ import annotations

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
    assert sorted(reported - enqueued) == ["queuectl.cli.progress"]
    assert sorted({name.split(".")[0] for name in reported} & set(HEAVY)) == []
    with Queue(str(db)) as queue:
        assert queue.get(job).to_dict()["progress"]["done"] == 3
