"""Shell completion, as the README tells users to enable it (click's completion protocol)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from queuectl import Queue
from queuectl.models import STATES
from tests.support.cli import QUEUECTL


def complete(words: str, cword: int) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "_QUEUECTL_COMPLETE": "bash_complete",
    }
    result = subprocess.run([QUEUECTL], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_bash_script_is_generated() -> None:
    env = {**os.environ, "_QUEUECTL_COMPLETE": "bash_source"}
    result = subprocess.run([QUEUECTL], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "_queuectl_completion" in result.stdout


def test_commands_and_subcommands_complete() -> None:
    assert complete("queuectl dl", 1) == ["dlq"]
    assert set(complete("queuectl dlq ", 2)) == {"list", "retry", "purge", "clear"}
    assert "--priority" in complete("queuectl enqueue --pri", 2)


def complete_on(db: Path, words: str, env: dict[str, str] | None = None) -> list[str]:
    """Completions of the last word of `words` (empty after a trailing space) on store `db`."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    full = {
        **os.environ,
        "QUEUECTL_DB": str(db),
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "_QUEUECTL_COMPLETE": "bash_complete",
        **(env or {}),
    }
    result = subprocess.run([QUEUECTL], env=full, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return [line.split(",", 1)[1] for line in result.stdout.splitlines() if line]


def test_values_complete_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    queue = Queue(str(db))
    queue.enqueue("true", id="build-1", queue="builds")
    queue.enqueue("true", id="build-2", queue="builds")
    queue.enqueue("true", id="deploy-1", queue="deploys")
    queue.pause("batch")
    queue.add_schedule("nightly", {"command": "true"}, cron="@daily")
    queue.close()
    assert complete_on(db, "queuectl list --state ") == list(STATES)
    assert complete_on(db, "queuectl list --state c") == ["completed", "cancelled"]
    assert complete_on(db, "queuectl purge --state d") == ["dead"]
    assert set(complete_on(db, "queuectl list --queue ")) == {"builds", "deploys", "batch"}
    assert complete_on(db, "queuectl enqueue --queue de") == ["deploys"]
    assert complete_on(db, "queuectl worker start -q b") == ["batch", "builds"]
    assert complete_on(db, "queuectl queue resume b") == ["batch", "builds"]
    assert sorted(complete_on(db, "queuectl show build")) == ["build-1", "build-2"]
    assert complete_on(db, "queuectl logs dep") == ["deploy-1"]
    assert sorted(complete_on(db, "queuectl cancel build-1 b")) == ["build-1", "build-2"]
    assert complete_on(db, "queuectl wait d") == ["deploy-1"]
    assert complete_on(db, "queuectl explain build-") == ["build-2", "build-1"]
    assert complete_on(db, "queuectl dlq retry ") == []  # no dead job
    assert complete_on(db, "queuectl config get lease") == ["lease_seconds"]
    assert "max_retries" in complete_on(db, "queuectl config set ")
    assert complete_on(db, "queuectl schedule remove n") == ["nightly"]
    other = tmp_path / "other.db"
    Queue(str(other)).enqueue("true", id="elsewhere").id  # noqa: B018
    assert complete_on(db, f"queuectl --db {other} show e") == ["elsewhere"]


def test_completion_creates_no_store(tmp_path: Path) -> None:
    missing = tmp_path / "nothing" / "queue.db"
    assert complete_on(missing, "queuectl show ") == []
    assert complete_on(missing, "queuectl list --state p") == ["pending", "processing"]
    assert not missing.parent.exists()
