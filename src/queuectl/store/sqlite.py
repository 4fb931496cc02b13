"""The SQLite dialect: one file in WAL mode, short IMMEDIATE transactions, wakeups over Unix
sockets. The queue's flows are written once over it (see store/dialect.py).

Several processes share the file. Writers serialise on SQLite's write lock (`BEGIN IMMEDIATE`
with a busy timeout, then a bounded retry), so a claim is atomic across processes. Each
thread gets its own connection.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from queuectl.clock import Clock, SystemClock
from queuectl.errors import InvalidInputError, NewerSchemaError, StoreError
from queuectl.store import lockholder
from queuectl.store.dialect import RUNNER_PATIENCE_S, Dialect
from queuectl.store.queries import migrations, newest_migration
from queuectl.store.rows import PER_JOB_COLUMNS, JobRow
from queuectl.store.turns import Turns
from queuectl.store.wakeup import SocketWakeup

T = TypeVar("T")
BUSY_TIMEOUT_S = 10.0
BUSY_RETRIES = 5
#: The longest a writer that finds the write lock taken sleeps before it tries again.
LOCK_POLL_S = 0.002
#: Rows of one multi-row INSERT of a bulk enqueue (a JobRow's parameters each; SQLite allows
#: 32,766 in a statement).
ROWS_PER_INSERT = 100
#: Rows of one INSERT of rows that share all columns but id and command: 2 parameters each,
#: 818 in all, within even the 999 of SQLite before 3.32. Larger statements gain nothing.
SHARED_ROWS_PER_INSERT = 400
#: Fewer rows in a run that share those columns go in with the others, ROWS_PER_INSERT a
#: statement: each other length of run is a statement to prepare.
SHARED_RUN_MIN = 20
#: All of a JobRow but its id and command; its id and command.
_PER_JOB = len(PER_JOB_COLUMNS)
_SHARED_COLUMNS = operator.itemgetter(slice(_PER_JOB, None))
_ID_AND_COMMAND = operator.itemgetter(*range(_PER_JOB))
_PER_JOB_VALUES = ", (" + ", ".join("?" * _PER_JOB) + ")"


def _translate(exc: sqlite3.Error, path: str) -> StoreError:
    """A driver error as one of ours, in words a user can act on."""
    text = str(exc)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(f"{path}: the database is read-only ({text})")
    if "full" in lowered:
        return StoreError(f"{path}: the disk is full ({text})")
    if "not a database" in lowered or "malformed" in lowered:
        return StoreError(f"{path}: not a usable queuectl database ({text})")
    if "locked" in lowered or "busy" in lowered:
        holder = lockholder.write_lock_holder(path)
        if holder is not None and lockholder.is_stopped(holder):
            return StoreError(
                f"{path}: the database is locked by process {holder} "
                f"(stopped: resume it with kill -CONT {holder})"
            )
        if holder is not None:
            return StoreError(f"{path}: the database stayed locked by process {holder} ({text})")
        return StoreError(f"{path}: the database stayed locked by another process ({text})")
    if "unable to open" in lowered:
        if os.path.exists(path) and not os.access(os.path.dirname(path) or ".", os.W_OK):
            # WAL mode must create the -wal and -shm files beside the database.
            return StoreError(f"{path}: the database is read-only (its folder cannot be written)")
        return StoreError(f"{path}: cannot open the database ({text})")
    return StoreError(f"{path}: {text}")


def _busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _holder_stopped(path: str) -> bool:
    """Whether the write lock is held by a stopped process: waiting longer would not help."""
    holder = lockholder.write_lock_holder(path)
    return holder is not None and lockholder.is_stopped(holder)


def _busy_timeout_s() -> float:
    # QUEUECTL_BUSY_TIMEOUT_S is internal, not for users: tests of a lock that is never
    # released (a frozen holder) set it low so as not to wait the full timeout.
    try:
        return float(os.environ.get("QUEUECTL_BUSY_TIMEOUT_S") or BUSY_TIMEOUT_S)
    except ValueError:
        return BUSY_TIMEOUT_S


def _begin_immediate(conn: sqlite3.Connection, turns: Turns, patience_s: float) -> None:
    """`BEGIN IMMEDIATE`, after the processes that waited for the write lock have had it (see
    turns.py), waiting for it (up to `patience_s`) by trying again every LOCK_POLL_S at
    most. SQLite's own busy handler sleeps longer and longer between tries (up to 100 ms) and
    takes the lock only if it is free when it wakes: beside a writer that commits and begins
    again at once it could miss every gap between two transactions for seconds."""
    turns.after_waiters()
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        deadline = None
        delay = LOCK_POLL_S / 8
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                now = time.monotonic()
                deadline = now + patience_s if deadline is None else deadline
                if not _busy(exc) or now >= deadline:
                    raise
            turns.wait()
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, LOCK_POLL_S)
    finally:
        turns.done()
        conn.execute(f"PRAGMA busy_timeout = {round(_busy_timeout_s() * 1000)}")


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """`PRAGMA journal_mode = WAL`, retried for up to the busy timeout with jittered backoff.

    On a file still in rollback mode (a new one) the switch needs the exclusive lock, and while
    another process holds the write lock to make the same switch it fails at once with
    "database is locked": SQLite does not call the busy handler there. On a WAL file it is a read.
    """
    deadline = time.monotonic() + _busy_timeout_s()
    delay = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.1)


class SQLiteDialect(Dialect):
    """One SQLite file."""

    kind = "sqlite"
    unique_violation = sqlite3.IntegrityError
    placeholder = "?"

    def __init__(self, path: str, clock: Clock | None = None, durable: bool = True) -> None:
        super().__init__(clock or SystemClock())
        self.path = path
        self.durable = durable
        self._local = threading.local()
        self._identity: tuple[int, int] | None = None
        self._wakeup = SocketWakeup(path)
        self._turns = Turns(path)
        self._create_file()

    # -- connections and transactions

    def _create_file(self) -> None:
        """Make the file 0600 before SQLite creates it: commands may hold secrets.

        An existing file is not opened: closing any descriptor of it would drop the POSIX locks
        of every SQLite connection of this process on it (stale reads, then a deleted WAL).
        """
        # Through a dangling symlink O_EXCL fails, and SQLite would then create the file under
        # the umask: create the link's target instead. -wal and -shm get the file's mode.
        real = os.path.realpath(self.path)
        folder = os.path.dirname(real)
        try:
            if folder and not os.path.isdir(folder):
                os.makedirs(folder, mode=0o700, exist_ok=True)
            fd = os.open(real, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except FileExistsError:
            if os.path.isdir(self.path):
                raise StoreError(f"{self.path}: is a directory, not a database file") from None
        except IsADirectoryError:
            raise StoreError(f"{self.path}: is a directory, not a database file") from None
        except PermissionError:
            if not os.path.exists(self.path):
                raise StoreError(
                    f"{self.path}: cannot create the database (permission denied)"
                ) from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the database ({exc.strerror})") from None

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=_busy_timeout_s(),
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from None
            conn.row_factory = sqlite3.Row
            try:
                _switch_to_wal(conn)  # before any other statement on a new connection
                conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            except sqlite3.Error as exc:
                conn.close()
                raise _translate(exc, self.path) from None
            self._local.conn = conn
            if self._identity is None:
                info = os.stat(self.path)
                self._identity = (info.st_dev, info.st_ino)
        return conn

    def _check_file(self) -> None:
        """A long-lived process notices when its database file is deleted or replaced."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            raise StoreError(f"{self.path}: the database file was deleted") from None
        if self._identity is not None and (info.st_dev, info.st_ino) != self._identity:
            raise StoreError(f"{self.path}: the database file was replaced by another file")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One IMMEDIATE transaction; runners are woken after it commits, if it asked to."""
        conn = self.conn
        self._local.wake = False
        give_up_at = getattr(self._local, "give_up_at", None)
        patience_s = _busy_timeout_s() if give_up_at is None else give_up_at - time.monotonic()
        _begin_immediate(conn, self._turns, max(0.0, patience_s))
        try:
            # A newer queuectl may have migrated the file since this process opened it: its
            # writes could break the new schema's rules, so they stop here, on one line.
            self._refuse_newer(self._schema_version())
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if self._local.wake:
            self._wakeup.notify()

    def _refuse_newer(self, version: int) -> None:
        newest = newest_migration("sqlite")
        if version > newest:
            raise NewerSchemaError(
                f"{self.path}: written by a newer queuectl (schema {version}, this one knows "
                f"{newest}); upgrade queuectl"
            )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._wakeup.close()
        self._turns.close()

    # -- what the flows need

    def attempt(self, call: Callable[[], T], runner: bool, replayable: bool) -> T:
        """Driver errors stop here: a lock becomes a bounded retry, anything else a StoreError.
        A runner's calls first check that the file is still the one it opened, and wait for
        the lock RUNNER_PATIENCE_S in all."""
        patience_s = min(RUNNER_PATIENCE_S, _busy_timeout_s()) if runner else _busy_timeout_s()
        outer = getattr(self._local, "give_up_at", None)  # an operation within another
        give_up_at = time.monotonic() + patience_s
        self._local.give_up_at = give_up_at if outer is None else min(outer, give_up_at)
        try:
            for attempt in range(BUSY_RETRIES + 1):
                try:
                    if runner:
                        self._check_file()
                    return call()
                except sqlite3.OperationalError as exc:
                    if (
                        _busy(exc)
                        and attempt < BUSY_RETRIES
                        and time.monotonic() < self._local.give_up_at
                        and not _holder_stopped(self.path)
                    ):
                        time.sleep(0.01 * (2**attempt) * (0.5 + random.random()))
                        continue
                    raise _translate(exc, self.path) from None
                except sqlite3.Error as exc:
                    raise _translate(exc, self.path) from None
                except UnicodeEncodeError:
                    # Undecodable bytes (argv) arrive as surrogates, which no stored text can
                    # hold.
                    raise InvalidInputError(
                        "text that is not UTF-8 cannot be stored or looked up"
                    ) from None
            raise AssertionError("unreachable")
        finally:
            self._local.give_up_at = outer

    def connection(self) -> sqlite3.Connection:
        return self.conn

    def transaction(self) -> Any:
        return self._write()

    def many(
        self, conn: sqlite3.Connection, name: str, params: Sequence[Sequence[Any] | dict[str, Any]]
    ) -> None:
        conn.executemany(self.q[name], params)

    def insert_jobs(self, conn: sqlite3.Connection, jobs: Sequence[JobRow]) -> None:
        # Running a statement, and binding a parameter, each cost about what storing a value
        # does: rows go in many a statement, and a run of rows that differ only in id and
        # command (a bulk enqueue's usual jobs) binds their other columns once.
        mixed: list[Sequence[Any]] = []
        for shared, run in itertools.groupby(jobs, _SHARED_COLUMNS):
            same = list(run)
            if len(same) < SHARED_RUN_MIN:
                mixed += same
                continue
            self._insert_rows(conn, mixed)
            mixed = []
            pairs = list(itertools.chain.from_iterable(map(_ID_AND_COMMAND, same)))
            whole = len(pairs) - len(pairs) % (_PER_JOB * SHARED_ROWS_PER_INSERT)
            if whole:
                conn.executemany(
                    self._insert_shared(SHARED_ROWS_PER_INSERT),
                    [
                        (*shared, *pairs[i : i + _PER_JOB * SHARED_ROWS_PER_INSERT])
                        for i in range(0, whole, _PER_JOB * SHARED_ROWS_PER_INSERT)
                    ],
                )
            if whole < len(pairs):
                rest = pairs[whole:]
                conn.execute(self._insert_shared(len(rest) // _PER_JOB), (*shared, *rest))
        self._insert_rows(conn, mixed)

    def _insert_rows(self, conn: sqlite3.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of `insert_jobs`, ROWS_PER_INSERT a statement."""
        whole = len(rows) - len(rows) % ROWS_PER_INSERT
        if whole:
            conn.executemany(
                self._insert_many_rows,
                [
                    list(itertools.chain.from_iterable(rows[i : i + ROWS_PER_INSERT]))
                    for i in range(0, whole, ROWS_PER_INSERT)
                ],
            )
        if whole < len(rows):
            conn.executemany(self.q["insert_jobs"], rows[whole:])

    @functools.cached_property
    def _insert_many_rows(self) -> str:
        """`insert_jobs` with ROWS_PER_INSERT rows of values."""
        sql = self.q["insert_jobs"]
        values = sql[sql.rindex("(") :]
        return sql + f", {values}" * (ROWS_PER_INSERT - 1)

    def _insert_shared(self, rows: int) -> str:
        """`sqlite_insert_jobs_shared` for this many rows."""
        sql = self.q["sqlite_insert_jobs_shared"]
        end = sql.rindex(")")  # the VALUES list's
        return sql[:end] + _PER_JOB_VALUES * (rows - 1) + sql[end:]

    def count_inserted(self, conn: sqlite3.Connection, counts: dict[tuple[str, str], int]) -> None:
        rows = [(*key, n) for key, n in counts.items()]
        conn.executemany(self.q["sqlite_count_inserted"], rows)
        conn.executemany(self.q["sqlite_count_enqueued"], rows)

    def count_inserted_ids(self, conn: sqlite3.Connection, ids: Sequence[str]) -> None:
        inserted = (self.array(ids),)
        conn.execute(self.q["sqlite_count_inserted_ids"], inserted)
        conn.execute(self.q["sqlite_count_enqueued_ids"], inserted)

    def array(self, values: Sequence[Any]) -> str:
        return json.dumps(list(values))

    def json(self, value: Any) -> str:
        if value == [] or value == {}:  # the common empty field, without a call into json
            return "[]" if isinstance(value, list) else "{}"
        return json.dumps(value)

    def from_json(self, value: Any) -> Any:
        return json.loads(value)

    def wake(self, conn: sqlite3.Connection) -> None:
        self._local.wake = True

    def refuse_newer_schema(self, conn: sqlite3.Connection) -> None:
        pass  # every write checks it already (_write)

    def compact_counts(self, deltas: int | None = None) -> None:
        pass  # with one writer, the counters are updated in place: no deltas pile up

    # -- schema

    def migrate(self) -> int:
        """Bring the schema to the newest version; refuse a file from a newer queuectl."""
        return self.attempt(self._migrate, runner=False, replayable=True)

    def _migrate(self) -> int:
        newest = newest_migration("sqlite")
        version = self._schema_version()
        self._refuse_newer(version)
        if version == newest:
            return version
        # The write lock first, then the version again: of processes opening a new file at
        # once, one migrates and the others wait here, then find nothing left to do. (Reading
        # first and upgrading to a write would deadlock, which no busy timeout resolves.)
        with self._write() as conn:
            version = self._schema_version()
            self.refuse_older_runners(conn, version)
            for number, _name, sql in migrations("sqlite"):
                if number > version:
                    for statement in _statements(sql):
                        try:
                            conn.execute(statement)
                        except sqlite3.OperationalError as exc:
                            if version == 0 and "already exists" in str(exc):
                                raise StoreError(
                                    f"{self.path}: not a queuectl database ({exc}); "
                                    "give another --db"
                                ) from None
                            raise
                    conn.execute(f"PRAGMA user_version = {number}")
        return newest

    def _schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def verify(self) -> None:
        """Check the whole file's structure; StoreError names the first problem."""
        rows = self.attempt(lambda: self.conn.execute(self.q["verify"]).fetchall(), False, True)
        problems = [str(row[0]) for row in rows]
        if problems != ["ok"]:
            first = " ".join(problems[0].replace("***", "").split("\n", 2)[:2]).strip()
            raise StoreError(f"{self.path}: the database is corrupt ({first}); restore a backup")

    def describe(self) -> dict[str, Any]:
        version = self.attempt(self._schema_version, False, True)
        return {"kind": self.kind, "target": self.path, "schema_version": version}

    # -- wakeups

    def listener(self, name: str) -> SocketWakeup | None:
        """Wakeups for one runner: a socket in the store's private folder."""
        return self._wakeup if self._wakeup.bind(name) is not None else None


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (triggers hold semicolons of their own)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        yield pending
