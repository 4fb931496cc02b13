"""Turns at SQLite's write lock (store/turns.py): a process waiting for the lock is seen by
the others, which let it go first; one stopped while waiting is not waited for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from queuectl.store.turns import Turns

WAITER = """
import sys
from queuectl.store.turns import Turns
turns = Turns(sys.argv[1])
turns.wait()
print("waiting", flush=True)
sys.stdin.readline()
turns.done()
print("done", flush=True)
sys.stdin.readline()
"""


def waiter(db: str) -> subprocess.Popen[str]:
    """A process that waits for the write lock of `db` until told, then is done waiting."""
    return subprocess.Popen(
        [sys.executable, "-c", WAITER, db], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def test_a_waiter_is_seen_until_it_has_had_its_turn(tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    turns = Turns(db)
    assert turns.waiter() is None
    with waiter(db) as child:
        assert child.stdout is not None
        assert child.stdin is not None
        assert child.stdout.readline() == "waiting\n"
        assert turns.waiter() == child.pid
        turns.wait()  # this process's own wait is no other's
        assert turns.waiter() == child.pid
        turns.done()
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "done\n"
        assert turns.waiter() is None
        assert turns.after_waiters() == "none"
        child.kill()
    turns.close()


def test_a_stopped_waiter_is_not_waited_for(tmp_path: Path) -> None:
    db = str(tmp_path / "q.db")
    turns = Turns(db)
    with waiter(db) as child:
        assert child.stdout is not None
        assert child.stdout.readline() == "waiting\n"
        os.kill(child.pid, signal.SIGSTOP)
        assert turns.after_waiters(longest=600) == "stopped"  # it cannot take its turn
        assert turns.waiter() == child.pid
        child.kill()
    turns.close()
