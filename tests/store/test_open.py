"""Many processes opening one new store at the same instant: one creates and migrates, the
others wait for it, and nobody sees "database is locked" (issue 21).

Each round starts 8 real processes released together by a barrier: two runners (`worker
start`, stopped with SIGTERM once registered) and clients (`worker list --json`, `status
--json`, `enqueue`, `init`, and `Queue(...)` from Python). They are forked from a
forkserver that has imported the CLI already, so their first store access falls within a
millisecond or two of each other instead of being spread over Python's start-up. The
command-line processes run `queuectl.cli.main`, the installed entry point's function.

QUEUECTL_OPEN_ROUNDS sets the number of rounds: by default 50 on SQLite (30 to 60 s on a loaded
2-core machine) and 10 on PostgreSQL (2 to 4 s a round there; the issue asks for 50).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import select
import signal
import sqlite3
import subprocess
import sys
import time
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.store import open_store
from queuectl.store.queries import migrations
from tests.support.cli import QUEUECTL, assert_clean_error, run_cli

ROUNDS = {"sqlite": 50, "postgres": 10}
CLIENTS = [
    ["worker", "list", "--json"],
    ["status", "--json"],
    ["enqueue", "--command", "true"],
    ["init"],
    ["python"],
    ["python"],
]
RUNNERS = [["worker", "start"], ["worker", "start", "--count", "2"]]


def rounds(backend: str) -> int:
    return int(os.environ.get("QUEUECTL_OPEN_ROUNDS", ROUNDS[backend]))


def _child(argv: list[str], target: str, out: str, barrier: Any) -> None:
    """One process of a round: wait for the others, then run the CLI (or the Python API)."""
    for fd, name in ((1, f"{out}.out"), (2, f"{out}.err")):
        os.dup2(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), fd)
    os.environ["QUEUECTL_DB"] = target
    os.environ.pop("QUEUECTL_DEBUG", None)
    barrier.wait(timeout=60)
    if argv == ["python"]:
        from queuectl import Queue

        try:
            queue = Queue(target)
            queue.enqueue("true")
            queue.close()
        except Exception as exc:
            print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
            sys.exit(1)
        return
    from queuectl.cli import main

    main(argv)


@pytest.fixture(scope="module")
def context() -> ForkServerContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__, "queuectl.cli", "queuectl.runner.supervisor"])
    return ctx


def one_round(ctx: ForkServerContext, target: str, folder: Path, backend: str) -> list[str]:
    """Run one round on a store that does not exist yet; every problem seen, as text."""
    barrier = ctx.Barrier(len(CLIENTS) + len(RUNNERS))
    started = {}
    for number, argv in enumerate(RUNNERS + CLIENTS):
        out = str(folder / f"p{number}")
        process = ctx.Process(target=_child, args=(argv, target, out, barrier))
        process.start()
        started[number] = (argv, out, process)
    problems: list[str] = []

    def check(number: int, argv: list[str], out: str, code: int | None) -> None:
        err = Path(f"{out}.err").read_text(errors="replace")
        bad = [w for w in ("error", "locked", "Traceback", "cannot use the store") if w in err]
        if code != 0 or bad:
            problems.append(f"{' '.join(argv)}: exit {code}: {err.strip()[-400:]}")

    runners = len(RUNNERS)
    for number in range(runners, len(started)):
        argv, out, process = started[number]
        process.join(60)
        check(number, argv, out, process.exitcode)
    # the runners are stopped once registered (or at once, if one has exited already)
    deadline = time.monotonic() + 30
    store = open_store(target)
    try:
        while time.monotonic() < deadline:
            if len(store.runners()) == runners:
                break
            if any(started[n][2].exitcode is not None for n in range(runners)):
                break
            time.sleep(0.02)
        else:
            problems.append("the runners did not register within 30 s")
        for number in range(runners):
            process = started[number][2]
            if process.pid is not None and process.exitcode is None:
                os.kill(process.pid, signal.SIGTERM)
        for number in range(runners):
            argv, out, process = started[number]
            process.join(30)
            if process.exitcode is None:
                process.kill()
                process.join()
            check(number, argv, out, process.exitcode)
        schema = store.describe()["schema_version"]
        if schema != migrations(backend)[-1][0]:
            problems.append(f"schema version {schema}")
        jobs = store.list_jobs().jobs
        if len(jobs) != 3:
            problems.append(f"{len(jobs)} jobs instead of 3")
    finally:
        store.close()
    return problems


def test_a_new_sqlite_store_opened_by_8_processes_at_once(
    context: ForkServerContext, tmp_path: Path
) -> None:
    failed = []
    for number in range(rounds("sqlite")):
        folder = tmp_path / f"r{number}"
        folder.mkdir()
        problems = one_round(context, str(folder / "queue.db"), folder, "sqlite")
        if problems:
            failed.append(f"round {number}: {problems}")
    assert not failed, "\n".join(failed)


def _empty(url: str) -> None:
    """The database as it was before queuectl first touched it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def test_an_empty_postgres_database_opened_by_8_processes_at_once(
    context: ForkServerContext, tmp_path: Path
) -> None:
    from tests.pg import empty_database

    failed = []
    with empty_database() as url:
        for number in range(rounds("postgres")):
            folder = tmp_path / f"r{number}"
            folder.mkdir()
            _empty(url)
            problems = one_round(context, url, folder, "postgres")
            if problems:
                failed.append(f"round {number}: {problems}")
    assert not failed, "\n".join(failed)


HOLD = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute(sys.argv[2])
print("held", flush=True)
time.sleep(float(sys.argv[3]))
conn.execute("COMMIT")
"""


def hold(db: Path, begin: str, seconds: float) -> subprocess.Popen[str]:
    """A process holding the file's write lock for `seconds` (as another opener would)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db), begin, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "held\n"
    return holder


def read_until(process: subprocess.Popen[bytes], text: str, deadline: float) -> str:
    """What the process wrote on stderr until `text` appeared; fails at the deadline."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    said = b""
    while text.encode() not in said:
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        chunk = os.read(fd, 65536) if ready else b""
        assert chunk, f"no {text!r} in: {said.decode(errors='replace')}"
        said += chunk
    return said.decode(errors="replace")


@pytest.mark.parametrize("command", [["status", "--json"], ["worker", "list", "--json"]])
def test_opening_a_new_file_waits_for_another_process_switching_it_to_wal(
    tmp_path: Path, command: list[str]
) -> None:
    """A new file is in rollback mode until one process switches it to WAL, holding its write
    lock meanwhile; there the switch of any other opener failed at once, busy timeout or not."""
    db = tmp_path / "queue.db"
    db.touch(0o600)
    holder = hold(db, "BEGIN IMMEDIATE", 1.0)
    result = run_cli(str(db), *command)
    holder.communicate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout) is not None


def test_opening_waits_for_another_process_migrating(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    db.touch(0o600)
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    holder = hold(db, "BEGIN IMMEDIATE", 1.0)
    result = run_cli(str(db), "enqueue", "--command", "true")
    holder.communicate(timeout=10)
    assert result.returncode == 0, result.stderr
    assert len(Queue(str(db)).list()) == 1


def test_a_write_waits_for_another_process_holding_the_write_lock(tmp_path: Path) -> None:
    """A write takes the write lock as it begins, and so waits its turn (the busy timeout): a
    transaction that read first could not wait for it, and would fail at once."""
    db = tmp_path / "queue.db"
    queue = Queue(str(db))
    try:
        queue.enqueue("true", id="before")
        holder = hold(db, "BEGIN IMMEDIATE", 1.0)
        queue.enqueue("true", id="after")  # while the other process holds the lock
        holder.communicate(timeout=10)
        assert sorted(job.id for job in queue.list()) == ["after", "before"]
    finally:
        queue.close()


def test_a_runner_refuses_to_write_once_a_newer_queuectl_migrated_its_store(
    tmp_path: Path,
) -> None:
    """A newer queuectl migrates the store under a running runner: the runner says so, writes
    nothing more and stops by itself (exit 1: it does not know the newer rules); older clients
    refuse with one line."""
    db = tmp_path / "queue.db"
    queue = Queue(str(db))
    queue.enqueue("true", id="before")
    queue.close()
    env = {**os.environ, "QUEUECTL_DB": str(db)}
    env.pop("QUEUECTL_DEBUG", None)
    runner = subprocess.Popen(
        [QUEUECTL, "worker", "start"], env=env, stderr=subprocess.PIPE, bufsize=0
    )
    try:
        read_until(runner, "completed before", time.monotonic() + 30)
        newer = migrations("sqlite")[-1][0] + 1
        with sqlite3.connect(db, isolation_level=None) as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ALTER TABLE jobs ADD COLUMN from_the_future TEXT")
            conn.execute(f"PRAGMA user_version = {newer}")
            conn.execute(
                "INSERT INTO jobs (id, command, state, queue, priority, max_retries, run_at, cwd,"
                " created_at, updated_at) VALUES ('after', 'true', 'pending', 'default', 0, 3,"
                " 0, '/', 0, 0)"
            )
            conn.execute("COMMIT")
        conn.close()
        for client in (["enqueue", "--command", "true"], ["worker", "list", "--json"]):
            assert_clean_error(run_cli(str(db), *client), 1, "newer queuectl", f"schema {newer}")
        said = read_until(runner, "newer queuectl", time.monotonic() + 30)
        assert f"(schema {newer}, this one knows" in said.splitlines()[-1], said
        assert "upgrade queuectl" in said.splitlines()[-1], said
    finally:
        try:
            out = runner.communicate(timeout=60)[1].decode()
        except subprocess.TimeoutExpired:
            runner.kill()
            out = runner.communicate()[1].decode()
    assert "Traceback" not in out, out
    assert runner.returncode == 1, out
    with sqlite3.connect(db) as conn:
        states = dict(conn.execute("SELECT id, state FROM jobs"))
    conn.close()
    assert states["after"] == "pending", states
