"""A store written by an older schema is migrated forward with its jobs intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from queuectl.models import new_job
from queuectl.store import open_store
from queuectl.store.queries import migrations
from queuectl.store.sqlite import SQLiteDialect, _statements
from tests.support.clock import FakeClock


def test_a_version_1_sqlite_store_migrates_and_its_delayed_jobs_wait(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    clock = FakeClock()
    old = SQLiteDialect(path, clock)
    conn = old.conn
    for statement in _statements(migrations("sqlite")[0][2]):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    now = clock.now_ms()
    row = "INSERT INTO jobs (id, command, state, queue, priority, max_retries, run_at, cwd, created_at, updated_at) VALUES (?, 'true', ?, 'default', 0, 3, ?, '/', ?, ?)"
    conn.execute(row, ("due", "pending", now - 1000, now, now))
    conn.execute(row, ("later", "pending", now + 60_000, now, now))
    conn.execute(row, ("retry", "failed", now + 5_000, now, now))
    conn.execute(row, ("done", "completed", now - 5000, now, now))
    old.close()

    store = open_store(path, clock)
    assert store.describe()["schema_version"] == migrations("sqlite")[-1][0]
    exchange = store.finish_and_claim("r", [], 10, None, 30)
    assert [c.id for c in exchange.claims] == ["due"]
    assert exchange.next_due_ms == now + 5_000
    clock.advance(6)
    assert [c.id for c in store.finish_and_claim("r", [], 10, None, 30).claims] == ["retry"]
    clock.advance(60)
    assert [c.id for c in store.finish_and_claim("r", [], 10, None, 30).claims] == ["later"]
    assert {job.id for job in store.list_jobs().jobs} == {
        "due",
        "later",
        "retry",
        "done",
    }
    store.close()


def test_a_delayed_job_stays_out_of_the_claim_until_due(tmp_path: Path) -> None:
    clock = FakeClock()
    store = open_store(str(tmp_path / "q.db"), clock)
    store.enqueue_many([new_job({"command": "true", "id": "later", "delay": "10s"})])
    assert store.finish_and_claim("r", [], 5, None, 30).claims == []
    with sqlite3.connect(str(tmp_path / "q.db")) as conn:
        assert conn.execute("SELECT scheduled FROM jobs WHERE id = 'later'").fetchone() == (1,)
    conn.close()
    clock.advance(10)
    assert [c.id for c in store.finish_and_claim("r", [], 5, None, 30).claims] == ["later"]
    store.close()


#: Opens a store twice, recording the files opened the second time (an audit hook sees them).
OPEN_TWICE = r"""
import sys
from queuectl.store import open_store
open_store(sys.argv[1]).close()
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
open_store(sys.argv[1]).close()
print("\n".join(opened))
"""


def test_opening_a_current_sqlite_store_reads_no_migration(tmp_path: Path) -> None:
    """Every CLI command opens the store: a schema already current costs no migration file."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", OPEN_TWICE, str(tmp_path / "queue.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    opened = result.stdout.splitlines()
    assert any(path.endswith("queue.db") for path in opened)  # the hook does see opens
    assert [path for path in opened if "migrations" in path] == []
