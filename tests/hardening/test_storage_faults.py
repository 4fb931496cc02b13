"""Storage faults: a full disk, a read-only database, corrupt and truncated files, a database
from a newer queuectl, another program's database, and the file deleted under a runner.

Each must end in one `error: ...` line and exit 1 (errors.StoreError), never a traceback, and
must lose nothing already committed. The faults are real: a tiny tmpfs, a read-only bind
mount, the immutable attribute; tests that cannot make one (not root) skip with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.errors import StoreError
from queuectl.store.queries import migrations
from tests.support.cli import QUEUECTL, assert_clean_error, run

#: A reader, a writer, the runner, and init (which only reads the schema version if current).
COMMANDS = [["init"], ["list"], ["enqueue", "--command", "true"], ["worker", "start"]]


NEWEST_SQLITE = migrations("sqlite")[-1][0]


def mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """`tmpfs("512k")`: a fresh tmpfs of that size, unmounted at the end (skip if not allowed)."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        where = tmp_path / f"disk{len(mounted)}"
        where.mkdir()
        result = mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where))
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        unmount(where)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def job_ids(db: Path) -> list[str]:
    listed = run(["--db", str(db), "list", "--limit", "0", "--json"])
    assert listed.returncode == 0, listed.stderr
    return sorted(job["id"] for job in json.loads(listed.stdout))


def make_queue_db(path: Path, jobs: int = 20) -> list[str]:
    with Queue(str(path)) as q:
        return sorted(
            job.id for job in q.enqueue_many([{"command": f"echo {n}"} for n in range(jobs)])
        )


# -- a full disk


def fill(q: Queue, size: int, filler: str) -> list[str]:
    """Enqueue batches of `size` jobs until the disk is full; the ids committed."""
    committed: list[str] = []
    for batch in range(1000):
        try:
            jobs = q.enqueue_many(
                [{"id": f"j{size}-{batch}-{n}", "command": f"echo {filler}"} for n in range(size)]
            )
        except StoreError as exc:
            if "disk is full" not in str(exc):
                raise
            return committed
        committed += [job.id for job in jobs]
    raise AssertionError("the disk never filled")


def test_a_full_disk_is_one_line_and_loses_nothing(tmpfs: Callable[[str], Path]) -> None:
    disk = tmpfs("512k")
    db = disk / "queue.db"
    committed: list[str] = []
    filler = "x" * 2000
    # The queue stays open: closing the last connection would checkpoint and free the WAL.
    with Queue(str(db)) as q:
        for size in (10, 1):  # batches, then single jobs into what is left
            committed += fill(q, size, filler)
        assert committed, "the disk was full before the first batch"
        # The batch that hit the full disk left nothing; every earlier one is there.
        assert job_ids(db) == sorted(committed)

        result = run(["--db", str(db), "enqueue", "--command", f"echo {filler}"])
        assert_clean_error(result, 1, "disk is full")
        batch_text = f'{{"command": "echo {filler}"}}\n' * 50
        result = run(["--db", str(db), "enqueue", "--file", "-"], input=batch_text)
        assert_clean_error(result, 1, "disk is full")
        # A new database on the full disk: refused the same way.
        assert_clean_error(run(["--db", str(disk / "new.db"), "init"]), 1, "disk is full")
        assert run(["--db", str(db), "status"]).returncode == 0
        assert job_ids(db) == sorted(committed)

    # Once there is room again, the queue works on, with everything it had.
    assert mount("-o", "remount,size=4m", str(disk)).returncode == 0
    added = run(["--db", str(db), "enqueue", "--id", "after", "--command", "true"])
    assert added.returncode == 0, added.stderr
    assert job_ids(db) == sorted([*committed, "after"])
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- a read-only database


def test_a_read_only_mount_is_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    ids = make_queue_db(folder / "queue.db")
    view = tmp_path / "ro"
    view.mkdir()
    if mount("--bind", str(folder), str(view)).returncode:
        pytest.skip("cannot bind-mount (not root?)")
    try:
        result = mount("-o", "remount,bind,ro", str(view))
        if result.returncode:
            pytest.skip(f"cannot remount read-only: {result.stderr.strip()}")
        before = digest(view / "queue.db")
        for args in (["enqueue", "--command", "true"], ["list"], ["init"], ["worker", "start"]):
            assert_clean_error(run(["--db", str(view / "queue.db"), *args]), 1, "read-only")
        assert_clean_error(run(["--db", str(view / "new.db"), "init"]), 1, "read-only")
        assert digest(view / "queue.db") == before
    finally:
        unmount(view)
    assert job_ids(folder / "queue.db") == ids


def test_an_immutable_database_file_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    ids = make_queue_db(db)
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True, check=False).returncode:
        pytest.skip("chattr +i is not available here (not root, or the file system lacks it)")
    try:
        before = digest(db)
        assert_clean_error(run(["--db", str(db), "enqueue", "--command", "true"]), 1, "read-only")
        assert_clean_error(run(["--db", str(db), "cancel", ids[0]]), 1, "read-only")
        assert_clean_error(
            run(["--db", str(db), "config", "set", "max-retries", "1"]), 1, "read-only"
        )
        assert job_ids(db) == ids  # reading still works
        assert digest(db) == before
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    assert job_ids(db) == ids


# -- files that are not (or no longer) a queuectl database


def _random_bytes(path: Path) -> None:
    path.write_bytes(os.urandom(64 * 1024))


def _random_after_header(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(64 * 1024))


def _truncated(size: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        real = path.with_name("real.db")
        make_queue_db(real, 300)
        path.write_bytes(real.read_bytes()[:size])

    return make


CORRUPTIONS = {
    "random bytes": (_random_bytes, "not a usable queuectl database"),
    "random after a SQLite header": (_random_after_header, "not a usable queuectl database"),
    "truncated to 100 bytes": (_truncated(100), "not a usable queuectl database"),
    "truncated to one page": (_truncated(4096), "not a usable queuectl database"),
    "truncated to half": (_truncated(40_000), "not a usable queuectl database"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_a_corrupt_database_is_one_line_and_left_as_it_is(tmp_path: Path, kind: str) -> None:
    make, words = CORRUPTIONS[kind]
    db = tmp_path / "queue.db"
    make(db)
    before = digest(db)
    for args in COMMANDS:
        if args == ["init"] and kind.startswith("truncated to half"):
            continue  # init reads only the header, which survived: it may succeed
        assert_clean_error(run(["--db", str(db), *args], timeout=20), 1, words)
    assert digest(db) == before


def test_a_database_of_a_newer_queuectl_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    ids = make_queue_db(db)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 999")
    conn.close()
    before = digest(db)
    for args in COMMANDS:
        line = assert_clean_error(run(["--db", str(db), *args], timeout=20), 1, "newer queuectl")
        assert "999" in line
    assert digest(db) == before
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {NEWEST_SQLITE}")
    conn.close()
    assert job_ids(db) == ids


def test_a_postgres_database_of_a_newer_queuectl_is_refused() -> None:
    from tests.pg import fresh_database

    with fresh_database() as url:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO queuectl_schema (version, name) VALUES (999, 'future')")
        for args in (["enqueue", "--command", "true"], ["worker", "start"]):
            line = assert_clean_error(run(["--db", url, *args], timeout=30), 1, "newer queuectl")
            assert "999" in line


def test_another_programs_database_is_refused_and_its_data_kept(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE jobs (name TEXT)")
        conn.execute("INSERT INTO jobs VALUES ('theirs')")
    conn.close()
    for args in (["init"], ["list"], ["enqueue", "--command", "true"]):
        assert_clean_error(run(["--db", str(db), *args]), 1, "not a queuectl database")
    # (Opening it switched its journal to WAL, a change of mode, not of data.)
    with sqlite3.connect(db) as conn:
        tables = conn.execute("SELECT name FROM sqlite_master").fetchall()
        assert (tables, conn.execute("SELECT * FROM jobs").fetchall()) == (
            [("jobs",)],
            [("theirs",)],
        )
    conn.close()


# -- the file deleted under a running runner


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_until(process: subprocess.Popen[bytes], text: str, deadline: float) -> str:
    """The process's stderr so far, once it holds `text` (raw reads: no buffer to fall behind)."""
    assert process.stderr is not None
    said = b""
    while text.encode() not in said:
        left = deadline - time.monotonic()
        assert left > 0, f"waited for {text!r}; got {said.decode(errors='replace')!r}"
        ready, _, _ = select.select([process.stderr], [], [], left)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            assert chunk, f"exited before {text!r}: {said.decode(errors='replace')!r}"
            said += chunk
    return said.decode(errors="replace")


def test_a_runner_whose_database_is_deleted_says_so_and_idles(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    make_queue_db(db, 0)
    runner = subprocess.Popen(
        [QUEUECTL, "--db", str(db), "worker", "start"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    try:
        read_until(runner, "started", time.monotonic() + 20)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        said = read_until(runner, "was deleted", time.monotonic() + 20)
        assert "Traceback" not in said
        # It waits for the store to come back, without spinning.
        cpu_before, wall_before = cpu_seconds(runner.pid), time.monotonic()
        time.sleep(3)
        used = cpu_seconds(runner.pid) - cpu_before
        assert used < 0.25 * (time.monotonic() - wall_before), f"{used:.2f}s of CPU in 3s"
        assert runner.poll() is None
        assert not db.exists(), "the runner must not recreate a deleted database"
        runner.send_signal(signal.SIGTERM)
        _, rest = runner.communicate(timeout=20)
        assert b"Traceback" not in rest
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.wait()
        if runner.stderr is not None:
            runner.stderr.close()


def test_init_names_a_corrupt_data_page(tmp_path: Path) -> None:
    """Damage inside the file (not its header) is found by `init`'s check, not met later."""
    db = tmp_path / "queue.db"
    ids = make_queue_db(db)
    assert ids
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'jobs'").fetchone()[0]
    conn.close()
    with open(db, "r+b") as handle:  # scribble over the jobs table's root page, past its header
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\xff" * 64)
    result = run(["--db", str(db), "init"], timeout=20)
    assert_clean_error(result, 1, "corrupt")
