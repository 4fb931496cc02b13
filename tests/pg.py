"""A fresh PostgreSQL database per test, on the server named by QUEUECTL_TEST_PG.

Once per test process, a template database is created and migrated; each test gets its own
clone of it (`CREATE DATABASE queuectl_test_<random> TEMPLATE ...`), dropped WITH (FORCE)
afterwards. Clones are made one test ahead and dropped behind, on background threads: under
load each costs from a tenth of a second to a second, which tests then need not wait for.
Without a server the tests skip with the reason, unless QUEUECTL_REQUIRE_PG=1 makes that a
failure.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import re
import socket
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

SERVER = os.environ.get("QUEUECTL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
#: Databases are named queuectl_test_<host>_<pid>_..., so a later session on this host can
#: drop those of a test process that was killed before it could drop its own.
HOST = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:6]
PREFIX = f"queuectl_test_{HOST}_{os.getpid()}_"
OWNED = re.compile(rf"queuectl_test_{HOST}_(\d+)_")

_template: str | None = None
_unavailable: str | None = None
_creator = ThreadPoolExecutor(1, thread_name_prefix="pg-create")
# DROP DATABASE waits for a checkpoint; concurrent drops share one, so they run in parallel
# (8 drops: 1 s in parallel, 11 s one after another, on a loaded server).
_dropper = ThreadPoolExecutor(8, thread_name_prefix="pg-drop")
_ahead: deque[Future[str]] = deque()


def database_url(name: str) -> str:
    """SERVER's URL with another database name."""
    parts = urlsplit(SERVER)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin() -> Any:
    import psycopg

    return psycopg.connect(SERVER, autocommit=True, connect_timeout=3)


def _unreachable(reason: str) -> None:
    if os.environ.get("QUEUECTL_REQUIRE_PG") == "1":
        pytest.fail(f"PostgreSQL required (QUEUECTL_REQUIRE_PG=1): {reason}")
    pytest.skip(reason)


def _drop(name: str) -> None:
    with suppress(Exception), _admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep() -> None:
    """Drop the databases left by test processes of this host that are gone."""
    with _admin() as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    for name in names:
        found = OWNED.match(name)
        if found and not _alive(int(found.group(1))):
            _drop(name)


def _ensure_template() -> str:
    """The migrated template of this process, created on first use."""
    global _template, _unavailable
    if _template is not None:
        return _template
    if _unavailable is None:
        try:
            import psycopg
        except ImportError:
            _unavailable = "psycopg is not installed"
        else:
            name = f"{PREFIX}template"
            try:
                _sweep()
                with _admin() as conn:
                    conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
            except psycopg.Error as exc:
                _unavailable = f"no PostgreSQL at {SERVER}: {str(exc).splitlines()[0]}"
            else:
                atexit.register(_drop, name)
                from queuectl.store.postgres import PostgresDialect

                store = PostgresDialect(database_url(name))
                try:
                    store.migrate()
                finally:
                    store.close()
                _template = name
                return name
    _unreachable(str(_unavailable))
    raise AssertionError("unreachable")


def _clone(template: str) -> str:
    name = f"{PREFIX}{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _drop_leftovers() -> None:
    """At exit: the clone made ahead and not used (the template has its own handler)."""
    while _ahead:
        with suppress(Exception):
            _drop(_ahead.popleft().result(timeout=60))


atexit.register(_drop_leftovers)


@contextmanager
def fresh_database() -> Iterator[str]:
    """The URL of a new, migrated, empty database of this test's own, dropped afterwards."""
    template = _ensure_template()
    if not _ahead:
        _ahead.append(_creator.submit(_clone, template))
    name = _ahead.popleft().result(timeout=120)
    _ahead.append(_creator.submit(_clone, template))
    try:
        yield database_url(name)
    finally:
        _dropper.submit(_drop, name)


@contextmanager
def empty_database() -> Iterator[str]:
    """The URL of a new database without queuectl's schema (for migration tests)."""
    _ensure_template()
    name = f"{PREFIX}{uuid.uuid4().hex[:10]}"
    with _admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield database_url(name)
    finally:
        _dropper.submit(_drop, name)


def at_schema(conn: Any, version: int) -> None:
    """Empty the connection's database and migrate it to `version` only, as a store made by an
    older release has it (`conn` in autocommit)."""
    from queuectl.store.queries import migrations

    conn.execute("DROP SCHEMA public CASCADE")
    conn.execute("CREATE SCHEMA public")
    conn.execute(
        "CREATE TABLE queuectl_schema (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
    )
    for number, name, sql in (m for m in migrations("postgres") if m[0] <= version):
        conn.execute(sql)
        conn.execute("INSERT INTO queuectl_schema VALUES (%s, %s)", (number, name))
