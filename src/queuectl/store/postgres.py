"""The PostgreSQL dialect: runners on several hosts share one queue; wakeups over LISTEN/NOTIFY.
The queue's flows are written once over it (see store/dialect.py); it adds the exchange in one
round trip (`settle_and_claim_at_once`).

Claims use `FOR UPDATE SKIP LOCKED`, so concurrent claimers take different jobs without
waiting on each other. Instants are epoch milliseconds on the database server's clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from queuectl.clock import Clock
from queuectl.errors import InvalidInputError, NewerSchemaError, QueuectlError, StoreError
from queuectl.store.dialect import RUNNER_PATIENCE_S, AtOnce, Dialect
from queuectl.store.flowcontrol import split_counted
from queuectl.store.queries import migrations, newest_migration
from queuectl.store.rows import INSERT_COLUMNS, JSON_COLUMNS, JobRow
from queuectl.urls import redact_url

T = TypeVar("T")
#: Deadlocks and serialisation failures roll the whole transaction back; it is run again.
CONFLICT_RETRIES = 5
CLOCK_RESYNC_S = 60.0
#: Where a JobRow holds its JSONB columns: COPY's text for them is their JSON, which a bulk
#: enqueue writes without the Jsonb dumper.
COPY_JSON_COLUMNS = tuple(INSERT_COLUMNS.index(name) for name in JSON_COLUMNS)
_CONFLICTS = (
    pg_errors.DeadlockDetected,
    pg_errors.SerializationFailure,
    pg_errors.LockNotAvailable,
)
#: Connection settings we add unless the URL gives its own: fail fast on a wrong host, and
#: notice a vanished server (TCP keepalives) even on an idle LISTEN connection.
_CONNECT_DEFAULTS = {
    "connect_timeout": "10",
    "application_name": "queuectl",
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
}


class _Unreachable(StoreError):
    """The server could not be reached (as opposed to a query that failed)."""


class DatabaseClock:
    """The database server's clock, read once a minute and carried forward on this host's
    monotonic clock: hosts with skewed clocks agree, at no round trip per transaction."""

    def __init__(self, read_server_ms: Callable[[], int]) -> None:
        self._read_server_ms = read_server_ms
        self._lock = threading.Lock()
        self._base_ms = 0
        self._base_mono = 0.0
        self._next_sync = 0.0
        self._synced = False
        self._last_ms = 0

    def now_ms(self) -> int:
        with self._lock:
            mono = time.monotonic()
            if mono >= self._next_sync:
                self._sync(mono)
                mono = time.monotonic()
            now = self._base_ms + round((mono - self._base_mono) * 1000)
            # never backwards, even when a resync lands a little earlier than extrapolated
            self._last_ms = max(now, self._last_ms)
            return self._last_ms

    def _sync(self, before: float) -> None:
        try:
            server_ms = self._read_server_ms()
        except QueuectlError:
            if not self._synced:  # no server yet: this host's clock until it answers
                self._base_ms, self._base_mono = time.time_ns() // 1_000_000, before
            self._next_sync = before + 5.0
            return
        after = time.monotonic()
        self._base_ms, self._base_mono = server_ms, (before + after) / 2
        self._synced = True
        self._next_sync = after + CLOCK_RESYNC_S


class PostgresDialect(Dialect):
    """One PostgreSQL database."""

    kind = "postgres"
    unique_violation = pg_errors.UniqueViolation
    placeholder = "%s"

    def __init__(self, url: str, clock: Clock | None = None) -> None:
        # The server's clock for real time; an injected clock (tests) is used as is.
        super().__init__(clock or DatabaseClock(self._server_ms))
        self.url = url
        params = conninfo_to_dict(url)
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.where = f"PostgreSQL at {host}:{port}"
        self._conninfo = make_conninfo(
            url, **{k: v for k, v in _CONNECT_DEFAULTS.items() if k not in params}
        )
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[psycopg.Connection[Any]] = []
        self._listeners: list[PostgresListener] = []
        self.at_once = self.settle_and_claim_at_once

    # -- connections and transactions

    def _connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection; _Unreachable (a StoreError) if the server is not there."""
        try:
            return psycopg.connect(self._conninfo, autocommit=True, row_factory=dict_row)
        except psycopg.Error as exc:
            raise _Unreachable(f"cannot connect to {self.where} ({_reason(exc)})") from None

    def _conn(self) -> psycopg.Connection[Any]:
        """This thread's connection, opened (again) when missing, broken or from before a fork."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.broken or conn.closed or self._local.pid != os.getpid():
            conn = self._connect()
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._connections = [c for c in self._connections if not c.closed]
                self._connections.append(conn)
        return conn

    def _drop_connection(self) -> None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None and self._local.pid == os.getpid():
            with contextlib.suppress(Exception):
                conn.close()

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on this thread's connection; `committing` marks the ambiguous COMMIT."""
        conn = self._conn()
        self._local.committing = False
        with conn.transaction():
            yield conn
            self._local.committing = True
        self._local.committing = False

    def _lost_connection(self, exc: psycopg.Error) -> bool:
        """Whether `exc` means the connection is gone (rather than the query failed)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and (conn.broken or conn.closed):
            return True
        state = exc.sqlstate
        if state is None:
            return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
        return state.startswith("08") or state in ("57P01", "57P02", "57P03")

    def _translate(self, exc: psycopg.Error) -> StoreError:
        """A driver error as one of ours, on one line."""
        if self._lost_connection(exc):
            return StoreError(f"lost the connection to {self.where} ({_reason(exc)})")
        return StoreError(f"{self.where}: {_reason(exc)}")

    def _server_ms(self) -> int:
        """The server's clock, for DatabaseClock."""
        try:
            row = self._conn().execute(self.q["pg_now_ms"]).fetchone()
        except psycopg.Error as exc:
            self._drop_connection()
            raise self._translate(exc) from None
        assert row is not None
        return int(row["value"])

    def close(self) -> None:
        for listener in list(self._listeners):
            listener.close()
        self._listeners.clear()
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(Exception):
                conn.close()
        self._local.conn = None

    # -- what the flows need

    def attempt(self, call: Callable[[], T], runner: bool, replayable: bool) -> T:
        """Driver errors stop here: a conflict is retried, a broken connection is reopened once
        (or, for a runner, for RUNNER_PATIENCE_S with backoff), anything else becomes a StoreError.

        A connection lost while COMMIT was in flight leaves the outcome unknown; an operation
        that is not `replayable` (running it twice would differ from once) then reports that.
        """
        retry_s = RUNNER_PATIENCE_S if runner else 0.0
        conflicts = 0
        reopened = False
        deadline: float | None = None
        delay = 0.1
        while True:
            self._local.committing = False
            try:
                return call()
            except _Unreachable:
                if not retry_s:
                    raise
            except _CONFLICTS:
                if conflicts >= CONFLICT_RETRIES:
                    raise StoreError(
                        f"{self.where}: the transaction kept conflicting with others"
                    ) from None
                conflicts += 1
                time.sleep(0.005 * (2**conflicts) * (0.5 + random.random()))
                continue
            except UnicodeEncodeError:
                # Undecodable bytes (argv) arrive as surrogates, which no text can hold.
                raise InvalidInputError(
                    "text that is not UTF-8 cannot be stored or looked up"
                ) from None
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.DataError) and "NUL" in str(exc):
                    raise InvalidInputError(
                        "text with a NUL byte cannot be stored or looked up"
                    ) from None
                if not self._lost_connection(exc):
                    raise self._translate(exc) from None
                committing = getattr(self._local, "committing", False)
                self._drop_connection()
                if committing and not replayable:
                    raise StoreError(
                        f"{self.where}: the connection was lost while committing; "
                        f"the change may or may not have been applied"
                    ) from None
                if not reopened:
                    reopened = True
                    continue
                if not retry_s:
                    raise self._translate(exc) from None
            # the server is unreachable: a runner waits for it to come back
            now = time.monotonic()
            if deadline is None:
                deadline = now + retry_s
            if now >= deadline:
                raise StoreError(
                    f"{self.where}: unreachable for {retry_s:g} s; giving up"
                ) from None
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 2.0)

    def connection(self) -> psycopg.Connection[Any]:
        return self._conn()

    def transaction(self) -> Any:
        return self._tx()

    def many(
        self,
        conn: psycopg.Connection[Any],
        name: str,
        params: Sequence[Sequence[Any] | dict[str, Any]],
    ) -> None:
        if len(params) == 1:
            conn.execute(self.q[name], params[0])
        elif params:
            with conn.cursor() as cursor:  # executemany pipelines: one round trip for many
                cursor.executemany(self.q[name], params)

    def insert_jobs(self, conn: psycopg.Connection[Any], jobs: Sequence[JobRow]) -> None:
        if len(jobs) == 1:  # an INSERT is one round trip, a COPY two
            conn.execute(self.q["insert_jobs"], jobs[0])
            return
        with conn.cursor() as cursor, cursor.copy(self.q["pg_copy_jobs"]) as copy:
            for row in jobs:
                values = list(row)
                for column in COPY_JSON_COLUMNS:
                    values[column] = _json_text(values[column].obj)
                copy.write_row(values)

    def count_inserted(
        self, conn: psycopg.Connection[Any], counts: dict[tuple[str, str], int]
    ) -> None:
        pass  # the counters' statement trigger (migration 0004) sees every insert

    def count_inserted_ids(self, conn: psycopg.Connection[Any], ids: Sequence[str]) -> None:
        pass  # as above

    def array(self, values: Sequence[Any]) -> list[Any]:
        return list(values)

    def json(self, value: Any) -> Jsonb:
        return Jsonb(value)

    def from_json(self, value: Any) -> Any:
        return value

    def settle_and_claim_at_once(
        self, settle: Sequence[dict[str, Any]], params: dict[str, Any], counted: list[str] | None
    ) -> AtOnce:
        """The exchange in one round trip (see dialect.SettleAtOnce)."""
        # Pipelined: BEGIN, every statement and COMMIT leave together and the answers come back
        # together, one round trip where waiting for each answer took eight or more. Nothing
        # sent depends on an answer: settlements were decided ahead, the attempts claimed
        # start in the claim's own statement, and a claim under concurrency limits counts the
        # queues and batches the last flow claim found limited, locked by the statements before
        # it (their limits are rechecked, and the limits found decide whether the general
        # claim runs).
        now = params["now"]
        conn = self._conn()
        self._local.committing = True  # from here a lost connection leaves the outcome unknown
        with conn.pipeline(), conn.transaction():
            if settle:
                conn.execute(self.q["pg_lock_settling"], ([row["id"] for row in settle],))
                for row in settle:
                    conn.execute(self.q["pg_lock_settling_batch"], row)
            settling = [
                (row["id"], conn.execute(self.q["pg_settle_fenced"], row)) for row in settle
            ]
            claimed = due = limits = locked = None
            if params["want"] > 0:
                conn.execute(self.q["promote_due"], (now,))
                if counted is None:
                    plain = (
                        "pg_claim_started"
                        if params["queue"] is None
                        else "pg_claim_one_queue_started"
                    )
                    claimed = conn.execute(self.q[plain], params)
                else:
                    queues, batches = split_counted(counted)
                    flow = {**params, "names": queues, "batches": batches}
                    limits = conn.execute(self.q["flow_lock_queues"], flow)
                    if batches:
                        locked = conn.execute(self.q["flow_lock_batches"], flow)
                        claim = "pg_flow_claim_batches_started"
                    else:
                        claim = "pg_flow_claim_started"
                    claimed = conn.execute(self.q[claim], flow)
                due = conn.execute(self.q["next_due"], (now,))
        self._local.committing = False
        settled = {job_id for job_id, cursor in settling if cursor.fetchone() is not None}
        answer = [] if claimed is None else claimed.fetchall()
        next_due = None if due is None else _scalar(due)
        if limits is None:  # the plain claim takes nothing where flow control may apply
            held_back = bool(answer and answer[0]["held_back"])
            rows = [row for row in answer if row["id"] is not None]  # nulls: nothing claimed
            return AtOnce(settled, rows, next_due, held_back, None)
        batch_limits = None if locked is None else locked.fetchall()
        return AtOnce(settled, answer, next_due, False, limits.fetchall(), batch_limits)

    def flow_may_apply(self, conn: psycopg.Connection[Any], params: dict[str, Any]) -> bool:
        # A statement after the claim has a later snapshot than the claim's: a job with a lock
        # taken meanwhile by another runner would hide a job it held back here. So the plain
        # path always tries the flow claim; the one-round-trip path asks in the claim itself.
        return True

    def wake(self, conn: psycopg.Connection[Any]) -> None:
        # Inside a transaction a NOTIFY is delivered at commit, and not at all on rollback.
        conn.execute(self.q["pg_notify"])

    def compact_counts(self, deltas: int | None = None) -> None:
        # Its own transaction, skipped while another session compacts: compaction only ever
        # contends with compaction, never with the claims and settlements appending deltas.
        if deltas is None:
            limit = self.compact_after + 1
            deltas = int(_scalar(self._conn().execute(self.q["pg_count_deltas"], (limit,))))
        if deltas > self.compact_after:
            with self._tx() as conn:
                if _scalar(conn.execute(self.q["pg_compaction_lock"])):
                    conn.execute(self.q["pg_compact_counts"])

    # -- schema

    def migrate(self) -> int:
        """Bring the schema to the newest version under an advisory lock, so concurrent first
        uses are safe; refuse a database from a newer queuectl."""
        try:
            return self.attempt(self._migrate, runner=False, replayable=True)
        except QueuectlError:
            self.close()  # open_store drops a store it could not migrate
            raise

    def _migrate(self) -> int:
        known = migrations("postgres")
        newest = known[-1][0]
        conn = self._conn()
        if _scalar(conn.execute(self.q["pg_schema_exists"])):
            version = int(_scalar(conn.execute(self.q["pg_schema_version"])))
            self._check_version(version, newest)
            if version == newest:
                return version
        with self._tx() as conn:
            conn.execute(self.q["pg_migration_lock"])
            conn.execute(self.q["pg_create_schema_table"])
            version = int(_scalar(conn.execute(self.q["pg_schema_version"])))
            self._check_version(version, newest)
            self.refuse_older_runners(conn, version)
            for number, name, sql in known:
                if number > version:
                    conn.execute(sql)
                    conn.execute(self.q["pg_record_migration"], (number, name))
        return newest

    def _check_version(self, version: int, newest: int) -> None:
        if version > newest:
            raise NewerSchemaError(
                f"{self.where}: written by a newer queuectl (schema {version}, this one knows "
                f"{newest}); upgrade queuectl"
            )

    def refuse_newer_schema(self, conn: Any) -> None:
        # Every write of SQLite checks the version (its _write); here only a runner's heartbeat
        # does, a query every third of a lease.
        version = int(_scalar(conn.execute(self.q["pg_schema_version"])))
        self._check_version(version, newest_migration("postgres"))

    def verify(self) -> None:
        """Nothing to walk: the server guards its pages; this only proves it answers."""
        self.attempt(lambda: _scalar(self._conn().execute(self.q["verify"])), False, True)

    def describe(self) -> dict[str, Any]:
        version = self.attempt(
            lambda: _scalar(self._conn().execute(self.q["pg_schema_version"])), False, True
        )
        return {"kind": self.kind, "target": redact_url(self.url), "schema_version": int(version)}

    # -- wakeups

    def listener(self, name: str) -> PostgresListener:
        """Wakeups for one runner, from a connection of its own that LISTENs."""
        listener = PostgresListener(self)
        self._listeners.append(listener)
        return listener


class PostgresListener:
    """A runner's wakeups: a pipe whose read end is readable after a NOTIFY.

    A thread owns a dedicated connection that ran LISTEN, and writes a byte to the pipe for
    each batch of notifications. When that connection breaks, the thread reconnects with
    backoff, LISTENs again and writes a byte too (notifications meanwhile were lost). So
    `fileno()` never changes: a selector registers it once, across server restarts.
    """

    def __init__(self, store: PostgresDialect) -> None:
        self._store = store
        self._read_fd, self._write_fd = os.pipe()
        self._stop_read, self._stop_write = os.pipe()
        for fd in (self._read_fd, self._write_fd):
            os.set_blocking(fd, False)
        self._closed = False
        self._conn: psycopg.Connection[Any] | None = None
        # LISTEN before returning, so a NOTIFY sent after listener() returns is not missed
        with contextlib.suppress(QueuectlError, psycopg.Error):
            self._conn = self._listen()
        self._thread = threading.Thread(target=self._run, name="queuectl-listen", daemon=True)
        self._thread.start()

    def fileno(self) -> int:
        return self._read_fd

    def drain(self) -> None:
        """Read every pending wakeup without blocking: one wake serves them all."""
        with contextlib.suppress(BlockingIOError, InterruptedError, OSError):
            while os.read(self._read_fd, 512):
                pass

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(OSError):
            os.write(self._stop_write, b"!")
        self._thread.join(timeout=5)
        for fd in (self._read_fd, self._write_fd, self._stop_read, self._stop_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _listen(self) -> psycopg.Connection[Any]:
        conn = self._store._connect()
        try:
            conn.execute(self._store.q["pg_listen"])
        except psycopg.Error:
            conn.close()
            raise
        return conn

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, b"!")  # a full pipe already holds a wakeup

    def _run(self) -> None:
        delay = 0.2
        try:
            while True:
                if self._conn is None:
                    try:
                        self._conn = self._listen()
                    except (QueuectlError, psycopg.Error):
                        if select.select([self._stop_read], [], [], delay)[0]:
                            return
                        delay = min(delay * 2, 5.0)
                        continue
                    delay = 0.2
                    self._wake()
                ready = select.select([self._conn.pgconn.socket, self._stop_read], [], [])[0]
                if self._stop_read in ready:
                    return
                try:
                    self._conn.pgconn.consume_input()
                    woken = False
                    while self._conn.pgconn.notifies() is not None:
                        woken = True
                    if self._conn.pgconn.status != psycopg.pq.ConnStatus.OK:
                        raise psycopg.OperationalError("connection lost")
                except psycopg.Error:
                    with contextlib.suppress(Exception):
                        self._conn.close()
                    self._conn = None
                    continue
                if woken:
                    self._wake()
        finally:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None


def _scalar(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    assert row is not None
    return row["value"]


_REASONS = (
    (re.compile(r"connection refused", re.I), "connection refused"),
    (
        re.compile(r"resolve host|translate host name|name or service not known", re.I),
        "unknown host",
    ),
    (re.compile(r"timeout expired|timed out", re.I), "timed out"),
    (re.compile(r"no route to host", re.I), "no route to host"),
    (re.compile(r"network is unreachable", re.I), "network unreachable"),
    (
        re.compile(r"password authentication failed|no password supplied", re.I),
        "authentication failed",
    ),
    (re.compile(r'(database "[^"]*" does not exist)'), r"\1"),
    (re.compile(r'(role "[^"]*" does not exist)'), r"\1"),
)


def _reason(exc: BaseException) -> str:
    """The gist of a driver message, on one line."""
    text = str(exc)
    for pattern, reason in _REASONS:
        found = pattern.search(text)
        if found:
            return found.expand(reason)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(exc).__name__
    first = re.sub(r"^(connection failed: )?(FATAL|ERROR):\s*", "", first)
    return first


def _json_text(value: Any) -> str:
    """JSON text of a value, the empty list and object of most jobs without a call to json."""
    if value == [] or value == {}:
        return "[]" if isinstance(value, list) else "{}"
    return json.dumps(value)
