"""A database created through a dangling symlink is private, as one created directly is
(issue 12, item 14): O_EXCL fails on the link, and SQLite then created the file 0644."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl import Queue
from tests.support.cli import run


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def absolute(tmp_path: Path, link: Path) -> Path:
    target = tmp_path / "data" / "queue.db"
    (tmp_path / "data").mkdir()
    link.symlink_to(target)
    return target


def relative(tmp_path: Path, link: Path) -> Path:
    (tmp_path / "data").mkdir()
    link.symlink_to(Path("data") / "queue.db")
    return tmp_path / "data" / "queue.db"


def chained(tmp_path: Path, link: Path) -> Path:
    """A link to a link to a file that does not exist, in a folder that does not either."""
    target = tmp_path / "not" / "yet" / "queue.db"
    middle = tmp_path / "middle.db"
    middle.symlink_to(target)
    link.symlink_to(middle)
    return target


@pytest.mark.parametrize("umask", [0o022, 0o000])
@pytest.mark.parametrize("make", [absolute, relative, chained])
def test_a_database_created_through_a_dangling_symlink_is_private(
    tmp_path: Path, umask: int, make: Callable[[Path, Path], Path]
) -> None:
    link = tmp_path / "link.db"
    target = make(tmp_path, link)
    command = ["--db", str(link), "enqueue", "--id", "secret", "--command", "echo secret"]
    result = run(command, umask=umask)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert target.is_file()
    assert mode(target) == 0o600
    # The WAL and shared-memory files SQLite makes beside the file take its mode.
    previous = os.umask(umask)
    try:
        with Queue(str(link)) as q:
            q.enqueue("echo more")
            for suffix in ("-wal", "-shm"):
                assert mode(f"{target}{suffix}") == 0o600, suffix
    finally:
        os.umask(previous)
    with Queue(str(target)) as q:
        assert q.get("secret").command == "echo secret"
