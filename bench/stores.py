"""Fresh stores for each measurement: a SQLite file in a scratch folder, or a scratch PostgreSQL
database (created for the measurement and dropped with FORCE after it)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from bench.common import Skip, Subject

PG_SERVER = os.environ.get("BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


class Scratch:
    """A scratch folder for one bench run: stores, logs, peers' files."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="queuectl-bench-")
        self.path = Path(self._dir.name)
        self._n = 0

    def file(self, stem: str, suffix: str = "") -> Path:
        self._n += 1
        return self.path / f"{stem}-{self._n}{suffix}"

    def close(self) -> None:
        self._dir.cleanup()


def _pg_admin() -> Any:
    try:
        import psycopg
    except ImportError:
        raise Skip("psycopg is not installed (pip install 'queuectl[postgres]')") from None
    try:
        return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3)
    except Exception as exc:
        raise Skip(
            f"PostgreSQL unreachable at {PG_SERVER}: {str(exc).strip().splitlines()[0]}"
        ) from None


def postgres_available() -> str | None:
    """None if a scratch database can be made on BENCH_PG, else why not."""
    try:
        _pg_admin().close()
    except Skip as exc:
        return str(exc)
    return None


def pg_transactions(target: str) -> int:
    """Transactions committed or rolled back so far in the database of `target`, as the
    server's statistics count them (each backend reports at most once a second, and an idle
    one up to 10 s late: count over several seconds, from well after a burst)."""
    name = urlsplit(target).path.lstrip("/")
    with _pg_admin() as admin:
        admin.execute("SELECT pg_stat_clear_snapshot()")
        row = admin.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    return int(row[0])


@contextmanager
def fresh_store(kind: str, scratch: Scratch, subject: Subject | None = None) -> Iterator[str]:
    """The target of an empty store of this kind (`sqlite` or `postgres`), migrated by this
    tree's queuectl or by `subject`'s own (a release's schema is its own)."""

    def init(target: str) -> None:
        if subject is None:
            from queuectl import Queue

            Queue(target).close()
        else:
            subject.probe("init", target)

    if kind == "sqlite":
        target = str(scratch.file("queue", ".db"))
        init(target)
        yield target
        return
    name = f"queuectl_bench_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    target = urlunsplit(urlsplit(PG_SERVER)._replace(path=f"/{name}"))
    try:
        try:
            init(target)
        except Exception as exc:
            raise Skip(
                f"the PostgreSQL store does not work yet: {type(exc).__name__}: {exc}"
            ) from None
        yield target
    finally:
        with suppress(Exception), _pg_admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


#: The triggers that count every job's state change (migration 0004); a store's own batched
#: inserts count themselves (0007).
COUNT_TRIGGERS = ("job_counts_insert", "job_counts_update", "job_counts_delete")


def drop_count_triggers(kind: str, target: str) -> None:
    """A store whose counts no longer follow its jobs: what the exact counts cost, measured."""
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(target) as conn:
            for name in COUNT_TRIGGERS:
                conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        for name in COUNT_TRIGGERS:
            conn.execute(f"DROP TRIGGER IF EXISTS {name} ON jobs")
