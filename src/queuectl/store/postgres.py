"""The PostgreSQL store: runners on several hosts share one queue; wakeups over LISTEN/NOTIFY.

Claims use `FOR UPDATE SKIP LOCKED`, so concurrent claimers take different jobs without
waiting on each other. Instants are epoch milliseconds on the database server's clock.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.json import Jsonb

from queuectl import lifecycle
from queuectl.clock import Clock, SystemClock
from queuectl.config import DEFAULTS
from queuectl.errors import (
    ConflictError,
    DuplicateJobError,
    InvalidInputError,
    NotFoundError,
    QueuectlError,
    StoreError,
    WrongStateError,
)
from queuectl.models import (
    CANCELLED,
    COMPLETED,
    DEAD,
    FAILED,
    PENDING,
    PROCESSING,
    Job,
    NewJob,
    new_job,
)
from queuectl.store import Claim, Runner, Schedule
from queuectl.store.queries import load_queries, migrations

T = TypeVar("T")
#: How long the methods a runner calls keep retrying while the server is unreachable: a
#: runner outlives a PostgreSQL restart instead of dying with it.
RUNNER_RETRY_S = 30.0
#: Deadlocks and serialisation failures roll the whole transaction back; it is run again.
CONFLICT_RETRIES = 5
CLOCK_RESYNC_S = 60.0
CONFIG_TTL_S = 1.0  # how stale the configuration used for settling may be
FAR_FUTURE = 2**62
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


def _guarded(
    retry_s: float = 0.0, replayable: bool = True
) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Driver errors stop here: a conflict is retried, a broken connection is reopened once
    (or, with `retry_s`, for that long with backoff), anything else becomes a StoreError.

    A connection lost while COMMIT was in flight leaves the outcome unknown; a method that
    is not `replayable` (running it twice would differ from once) then reports that.
    """

    def decorate(method: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(method)
        def wrapper(self: PostgresStore, *args: Any, **kwargs: Any) -> T:
            conflicts = 0
            reopened = False
            deadline: float | None = None
            delay = 0.1
            while True:
                self._local.committing = False
                try:
                    return method(self, *args, **kwargs)
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

        return wrapper

    return decorate


class DatabaseClock(SystemClock):
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


class PostgresStore:
    """The Store on one PostgreSQL database."""

    kind = "postgres"

    def __init__(self, url: str, clock: Clock) -> None:
        self.url = url
        params = conninfo_to_dict(url)
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
        self.where = f"PostgreSQL at {host}:{port}"
        self._conninfo = make_conninfo(
            url, **{k: v for k, v in _CONNECT_DEFAULTS.items() if k not in params}
        )
        # The server's clock for real time; an injected fake clock (tests) is used as is.
        self.clock: Clock = DatabaseClock(self._server_ms) if type(clock) is SystemClock else clock
        queries = load_queries("postgres")
        columns = queries["job_columns"]
        self.q = {name: sql.replace("{job_columns}", columns) for name, sql in queries.items()}
        self._local = threading.local()
        self._config_cache: tuple[float, dict[str, float]] | None = None
        self._lock = threading.Lock()
        self._connections: list[psycopg.Connection[Any]] = []
        self._listeners: list[PostgresListener] = []

    # -- connections and transactions

    def _connect(self) -> psycopg.Connection[Any]:
        """A new autocommit connection; _Unreachable (a StoreError) if the server is not there."""
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
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
        return int(row[0])

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

    def now(self) -> int:
        return self.clock.now_ms()

    # -- schema

    def migrate(self) -> int:
        """Bring the schema to the newest version under an advisory lock, so concurrent first
        uses are safe; refuse a database from a newer queuectl."""
        try:
            return self._migrate()
        except QueuectlError:
            self.close()  # open_store drops a store it could not migrate
            raise

    @_guarded()
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
            for number, name, sql in known:
                if number > version:
                    conn.execute(sql)
                    conn.execute(self.q["pg_record_migration"], (number, name))
        return newest

    def _check_version(self, version: int, newest: int) -> None:
        if version > newest:
            raise StoreError(
                f"{self.where}: written by a newer queuectl (schema {version}, this one knows "
                f"{newest}); upgrade queuectl"
            )

    @_guarded()
    def verify(self) -> None:
        """Nothing to walk: the server guards its pages; this only proves it answers."""
        _scalar(self._conn().execute(self.q["verify"]))

    @_guarded()
    def describe(self) -> dict[str, Any]:
        version = _scalar(self._conn().execute(self.q["pg_schema_version"]))
        return {"kind": self.kind, "target": _redact(self.url), "schema_version": int(version)}

    # -- jobs

    def _row_to_job(self, row: Sequence[Any]) -> Job:
        return Job(
            id=row[1], command=row[2], state=row[3], queue=row[4], priority=row[5],
            attempts=row[6], max_retries=row[7], timeout=row[8], run_at_ms=row[9],
            depends_on=list(row[10]), no_retry_exit_codes=list(row[11]),
            unique_key=row[12], cwd=row[13], env=dict(row[14]), created_at_ms=row[15],
            updated_at_ms=row[16], started_at_ms=row[17], finished_at_ms=row[18],
            exit_code=row[19], last_error=row[20], duration_ms=row[21], lease_owner=row[22],
            lease_expires_at_ms=row[23],
        )  # fmt: skip

    def _config(self, conn: psycopg.Connection[Any]) -> dict[str, float]:
        config = dict(DEFAULTS)
        for key, value in conn.execute(self.q["config_all"]):
            if key in config:
                config[key] = value
        return config

    @_guarded(replayable=False)
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert every job or none; a held unique_key yields the job that holds it."""
        if not jobs:
            return []
        now = self.now()
        tried: list[str] = []  # the ids inserted, for naming a duplicate
        ids: list[str] = []  # the ids to return: a unique_key's holder replaces its job
        plain = all(not j.depends_on and j.unique_key is None for j in jobs)
        try:
            with self._tx() as conn:
                default_retries = int(self._config(conn)["max_retries"])
                if plain:
                    tried = [job.id or _new_id() for job in jobs]
                    ids = list(tried)
                    with conn.cursor() as cursor:
                        cursor.executemany(
                            self.q["insert_job"],
                            [
                                self._insert_row(job, job_id, now, default_retries, 0, None)
                                for job, job_id in zip(jobs, tried, strict=True)
                            ],
                        )
                else:
                    for job in jobs:
                        job_id = job.id or _new_id()
                        tried.append(job_id)
                        existing = self._enqueue_one(conn, job, job_id, now, default_retries)
                        if existing is not None:
                            tried.pop()  # not inserted: its unique_key's holder stands for it
                        ids.append(job_id if existing is None else existing)
                found = {job.id: job for job in self._jobs_by_ids(conn, ids)}
                conn.execute(self.q["pg_notify"])
        except pg_errors.UniqueViolation as exc:
            if exc.diag.constraint_name == "jobs_id_key":
                raise self._duplicate(tried) from None
            raise
        return [found[job_id] for job_id in ids]

    def _insert_row(
        self, job: NewJob, job_id: str, now: int, default_retries: int, waiting_on: int,
        cancelled_by: str | None,
    ) -> tuple[Any, ...]:  # fmt: skip
        run_at = job.first_run_at(now)
        return (
            job_id, job.command, CANCELLED if cancelled_by else PENDING, job.queue, job.priority,
            default_retries if job.max_retries is None else job.max_retries, job.timeout, run_at,
            Jsonb(job.depends_on), waiting_on, Jsonb(job.no_retry_exit_codes),
            job.unique_key, job.cwd, Jsonb(job.env), now, now,
            now if cancelled_by else None, cancelled_by, run_at > now,
        )  # fmt: skip

    def _enqueue_one(
        self, conn: psycopg.Connection[Any], job: NewJob, job_id: str, now: int,
        default_retries: int,
    ) -> str | None:  # fmt: skip
        """Insert one job with its dependencies; the id of the holder of its unique_key, if any."""
        waiting_on, cancelled_by = 0, None
        if job.depends_on:
            states = dict(conn.execute(self.q["dep_states"], (job.depends_on,)).fetchall())
            unknown = [dep for dep in job.depends_on if dep not in states]
            if unknown:
                raise InvalidInputError(f"depends_on: no job {unknown[0]!r}")
            waiting_on = sum(1 for dep in job.depends_on if states[dep] != COMPLETED)
            for dep in job.depends_on:
                if states[dep] in (DEAD, CANCELLED):
                    cancelled_by = f"dependency {dep} is {states[dep]}"
                    break
        row = self._insert_row(job, job_id, now, default_retries, waiting_on, cancelled_by)
        # A concurrent enqueue may take the key between our look and our insert: the insert
        # then does nothing (ON CONFLICT), and the next look finds the new holder.
        for _ in range(CONFLICT_RETRIES):
            if job.unique_key is not None:
                held = conn.execute(self.q["find_unique"], (job.unique_key,)).fetchone()
                if held:
                    return str(held[0])
            if conn.execute(self.q["insert_job"], row).fetchone() is not None:
                break
        else:
            raise StoreError(f"{self.where}: unique_key {job.unique_key!r} kept changing hands")
        for dep in job.depends_on:
            conn.execute(self.q["insert_dep"], (dep, job_id))
        return None

    def _duplicate(self, tried: list[str]) -> DuplicateJobError:
        """The error for a refused batch (rolled back by now), naming the id that failed: the
        first one that exists already or repeats an earlier one, in insertion order."""
        existing = {row[1] for row in self._conn().execute(self.q["jobs_by_ids"], (tried,))}
        seen: set[str] = set()
        for job_id in tried:
            if job_id in existing:
                return DuplicateJobError(f"job {job_id!r} already exists")
            if job_id in seen:
                return DuplicateJobError(f"job {job_id!r} appears twice in the batch")
            seen.add(job_id)
        return DuplicateJobError("a job in the batch already exists")

    def _jobs_by_ids(self, conn: psycopg.Connection[Any], ids: Sequence[str]) -> list[Job]:
        return [self._row_to_job(r) for r in conn.execute(self.q["jobs_by_ids"], (list(ids),))]

    @_guarded(retry_s=RUNNER_RETRY_S)
    def finish_and_claim(
        self, owner: str, outcomes: Sequence[lifecycle.Outcome], want: int,
        queues: Sequence[str] | None, lease_s: float,
    ) -> tuple[dict[str, lifecycle.Settlement], list[Claim]]:  # fmt: skip
        """Settle finished attempts, then claim up to `want` due jobs, in one transaction.

        Returns how each outcome was settled (fenced-out ones are missing) and the claims.
        Replayed after a connection lost during COMMIT, outcomes already settled are fenced
        out, and claims that did commit stay leased to `owner` until owned_jobs shows them.
        """
        now = self.now()
        claims: list[Claim] = []
        settled: dict[str, lifecycle.Settlement] = {}
        with self._tx() as conn:
            if outcomes:
                settled, unblocked = self._settle(conn, owner, outcomes, now)
                if unblocked:
                    conn.execute(self.q["pg_notify"])
            if want > 0:
                conn.execute(self.q["promote_due"], (now,))
                rows = conn.execute(
                    self.q["claim"],
                    {
                        "owner": owner, "now": now, "lease_until": now + round(lease_s * 1000),
                        "queues": None if queues is None else list(queues), "want": want,
                    },
                ).fetchall()  # fmt: skip
                rows.sort(key=lambda r: (-r[7], r[8], r[9]))
                claims = [Claim(r[0], r[1], r[2], r[3], dict(r[4]), r[5], r[6], r[7]) for r in rows]
        return settled, claims

    def _settle(
        self, conn: psycopg.Connection[Any], owner: str, outcomes: Sequence[lifecycle.Outcome],
        now: int,
    ) -> tuple[dict[str, lifecycle.Settlement], bool]:  # fmt: skip
        """Apply outcomes still ours; whether a completion made dependants due.

        A few round trips whatever the number of outcomes: one locking read of the attempts
        still ours, the settlements and outputs pipelined, one update of the dependants.
        """
        ids = [outcome.job_id for outcome in outcomes]
        rows = conn.execute(self.q["fenced_jobs"], (ids, owner)).fetchall()
        ours = {r[0]: lifecycle.Fence(r[1], r[2], list(r[3])) for r in rows}
        decided = lifecycle.settle_ours(outcomes, ours, self._settle_config(conn), random.random)
        updates = [lifecycle.settle_params(o, s, owner, now) for o, s in decided]
        outputs = [(o.job_id, o.output) for o, _ in decided if o.output is not None]
        with conn.cursor() as cursor:
            # executemany pipelines its statements: one round trip for many; one is one anyway
            for query, params in (("settle_job", updates), ("save_output", outputs)):
                if len(params) == 1:
                    cursor.execute(self.q[query], params[0])
                elif params:
                    cursor.executemany(self.q[query], params)
        for outcome, settlement in decided:
            if settlement.state != COMPLETED:
                self._after_transition(conn, outcome.job_id, settlement.state, now)
        with_dependants = {r[0] for r in rows if r[4]}
        completed = [
            o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants
        ]
        unblocked = bool(completed) and (
            conn.execute(self.q["unblock_dependants"], (completed,)).rowcount > 0
        )
        return {outcome.job_id: settlement for outcome, settlement in decided}, unblocked

    def _settle_config(self, conn: psycopg.Connection[Any]) -> dict[str, float]:
        """The configuration for settling, read at most every CONFIG_TTL_S: a round trip saved
        per settlement, and runners pick changes up within seconds anyway (SPEC section 6)."""
        cached = self._config_cache
        if cached is None or time.monotonic() - cached[0] > CONFIG_TTL_S:
            cached = self._config_cache = (time.monotonic(), self._config(conn))
        return cached[1]

    def _after_transition(
        self, conn: psycopg.Connection[Any], job_id: str, state: str, now: int
    ) -> bool:
        """Dependants learn that a dependency completed, or are cancelled with it; whether
        some of them may have become due."""
        if state == COMPLETED:
            return conn.execute(self.q["unblock_dependants"], ([job_id],)).rowcount > 0
        if state in (DEAD, CANCELLED):
            conn.execute(
                self.q["cancel_dependants"],
                {"id": job_id, "reason": f"dependency {job_id} is {state}", "now": now},
            )
        return False

    @_guarded()
    def release(self, owner: str, job_id: str, attempt: int) -> bool:
        """Return a job stopped by a runner's shutdown to pending, giving its attempt back."""
        with self._tx() as conn:
            cursor = conn.execute(
                self.q["release_job"],
                {"now": self.now(), "id": job_id, "owner": owner, "attempt": attempt},
            )
            if cursor.rowcount:
                conn.execute(self.q["pg_notify"])
        return cursor.rowcount == 1

    @_guarded(retry_s=RUNNER_RETRY_S)
    def save_output(self, job_id: str, data: bytes) -> None:
        self._conn().execute(self.q["save_output"], (job_id, data))

    @_guarded(retry_s=RUNNER_RETRY_S)
    def owned_jobs(self, owner: str) -> dict[str, int]:
        return dict(self._conn().execute(self.q["owned_jobs"], (owner,)).fetchall())

    @_guarded(retry_s=RUNNER_RETRY_S)
    def next_due_ms(self) -> int | None:
        row = self._conn().execute(self.q["next_due"], (self.now(),)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @_guarded()
    def get(self, job_id: str) -> Job | None:
        row = self._conn().execute(self.q["get_job"], (job_id,)).fetchone()
        return None if row is None else self._row_to_job(row)

    @_guarded()
    def list_jobs(
        self, state: str | None, queue: str | None, limit: int | None, before_seq: int | None
    ) -> list[tuple[int, Job]]:
        rows = self._conn().execute(
            self.q["list_jobs"],
            {
                "state": state, "queue": queue, "limit": limit,
                "before": FAR_FUTURE if before_seq is None else before_seq,
            },
        )  # fmt: skip
        return [(row[0], self._row_to_job(row)) for row in rows]

    @_guarded()
    def output(self, job_id: str) -> bytes | None:
        row = self._conn().execute(self.q["get_output"], (job_id,)).fetchone()
        return None if row is None else bytes(row[0])

    @_guarded()
    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue, then per state."""
        result: dict[str, dict[str, int]] = {}
        for queue, state, count in self._conn().execute(self.q["counts"]):
            result.setdefault(queue, {})[state] = int(count)
        return result

    @_guarded()
    def done_since(self, since_ms: int) -> int:
        return int(_scalar(self._conn().execute(self.q["done_since"], (since_ms,))))

    @_guarded(replayable=False)
    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel jobs that may still run; returns them as they were before (all or nothing)."""
        now = self.now()
        with self._tx() as conn:
            before = {job.id: job for job in self._jobs_by_ids(conn, job_ids)}
            for job_id in job_ids:
                if job_id not in before:
                    raise NotFoundError(f"no job {job_id!r}")
                state = before[job_id].state
                if state not in (PENDING, FAILED, PROCESSING):
                    raise WrongStateError(f"job {job_id!r} is {state}; it cannot be cancelled")
            for job_id in sorted(set(job_ids)):
                if not conn.execute(self.q["cancel_job"], {"id": job_id, "now": now}).rowcount:
                    # finished since we looked: all or nothing, so the whole cancel is refused
                    job = self._jobs_by_ids(conn, [job_id])[0]
                    raise WrongStateError(f"job {job_id!r} is {job.state}; it cannot be cancelled")
                self._after_transition(conn, job_id, CANCELLED, now)
            conn.execute(self.q["pg_notify"])
        return [before[job_id] for job_id in job_ids]

    @_guarded(replayable=False)
    def retry_dead(self, job_ids: Sequence[str] | None) -> list[str]:
        """Move dead jobs back to pending with attempts reset; every one named must be dead."""
        now = self.now()
        retried: list[str] = []
        with self._tx() as conn:
            if job_ids is None:
                named = False
                job_ids = [row[0] for row in conn.execute(self.q["dead_ids"]).fetchall()]
            else:
                named = True
                states = {job.id: job.state for job in self._jobs_by_ids(conn, job_ids)}
                for job_id in job_ids:
                    if job_id not in states:
                        raise NotFoundError(f"no job {job_id!r}")
                    if states[job_id] != DEAD:
                        raise WrongStateError(f"job {job_id!r} is {states[job_id]}, not dead")
            for job_id in dict.fromkeys(job_ids):
                try:
                    changed = conn.execute(
                        self.q["retry_dead"], {"id": job_id, "now": now}
                    ).rowcount
                except pg_errors.UniqueViolation:
                    raise ConflictError(
                        f"job {job_id!r} cannot be retried: an active job holds its unique_key"
                    ) from None
                if changed:
                    retried.append(job_id)
                elif named:  # retried by someone else since we looked
                    raise WrongStateError(f"job {job_id!r} is no longer dead")
            if retried:
                conn.execute(self.q["pg_notify"])
        return list(job_ids) if named else retried

    @_guarded()
    def purge(self, states: Sequence[str], finished_before_ms: int) -> int:
        with self._tx() as conn:
            cursor = conn.execute(
                self.q["purge"], {"states": list(states), "before": finished_before_ms}
            )
        return cursor.rowcount

    # -- runners and leases

    @_guarded(retry_s=RUNNER_RETRY_S)
    def register_runner(self, runner: Runner) -> None:
        self._conn().execute(
            self.q["register_runner"],
            (
                runner.id, runner.host, runner.pid, runner.pid_started, runner.workers,
                None if runner.queues is None else Jsonb(list(runner.queues)),
                runner.started_at_ms, runner.heartbeat_at_ms,
            ),
        )  # fmt: skip

    @_guarded(retry_s=RUNNER_RETRY_S)
    def heartbeat(self, owner: str, lease_s: float) -> bool | None:
        """Renew the runner and its leases; whether a stop was requested (None: unregistered)."""
        now = self.now()
        with self._tx() as conn:
            row = conn.execute(self.q["beat_runner"], (now, owner)).fetchone()
            conn.execute(self.q["renew_leases"], (now + round(lease_s * 1000), owner))
        return None if row is None else bool(row[0])

    @_guarded()
    def unregister_runner(self, owner: str) -> None:
        self._conn().execute(self.q["unregister_runner"], (owner,))

    @_guarded()
    def runners(self) -> list[Runner]:
        conn = self._conn()
        running: dict[str, list[str]] = {}
        for owner, job_id in conn.execute(self.q["running_jobs"]):
            running.setdefault(owner, []).append(job_id)
        return [_runner(r, running) for r in conn.execute(self.q["runners"]).fetchall()]

    @_guarded()
    def request_stop(self) -> int:
        with self._tx() as conn:
            count = conn.execute(self.q["request_stop"]).rowcount
            conn.execute(self.q["pg_notify"])
        return int(count)

    @_guarded(retry_s=RUNNER_RETRY_S)
    def reap(self, dead_owners: Sequence[str]) -> list[str]:
        """Recover the jobs of runners known dead and of expired leases as failed attempts."""
        now = self.now()
        recovered: list[str] = []
        if not dead_owners and not self._conn().execute(self.q["expired_jobs"], (now,)).fetchone():
            return recovered
        with self._tx() as conn:
            victims: list[tuple[str, int, str]] = [
                (job_id, attempt, owner)
                for owner in dead_owners
                for job_id, attempt in conn.execute(self.q["jobs_of_owner"], (owner,)).fetchall()
            ]
            victims += conn.execute(self.q["expired_jobs"], (now,)).fetchall()
            for owner in dead_owners:
                conn.execute(self.q["unregister_runner"], (owner,))
            for job_id, attempt, owner in dict.fromkeys(victims):
                lost = [lifecycle.Outcome(job_id, attempt, None, "worker lost", now, now)]
                settled, _ = self._settle(conn, owner, lost, now)
                recovered += settled
            if recovered:
                conn.execute(self.q["pg_notify"])
        return recovered

    # -- configuration and queues

    @_guarded()
    def config(self) -> dict[str, float]:
        return self._config(self._conn())

    @_guarded()
    def set_config(self, key: str, value: float) -> None:
        self._config_cache = None
        with self._tx() as conn:
            conn.execute(self.q["config_set"], (key, Jsonb(value)))
            conn.execute(self.q["pg_notify"])

    @_guarded()
    def queues(self) -> dict[str, bool]:
        return {name: bool(paused) for name, paused in self._conn().execute(self.q["queues"])}

    @_guarded()
    def set_paused(self, queue: str, paused: bool) -> None:
        with self._tx() as conn:
            conn.execute(self.q["set_paused"], (queue, paused))
            conn.execute(self.q["pg_notify"])

    # -- schedules

    @_guarded()
    def add_schedule(self, schedule: Schedule) -> None:
        """Create or replace a schedule by name."""
        with self._tx() as conn:
            conn.execute(
                self.q["upsert_schedule"],
                {
                    "name": schedule.name, "cron": schedule.cron, "every_s": schedule.every_s,
                    "tz": schedule.tz, "job": Jsonb(schedule.job), "now": schedule.created_at_ms,
                    "next_at": schedule.next_at_ms,
                },
            )  # fmt: skip
            conn.execute(self.q["pg_notify"])

    @_guarded()
    def remove_schedule(self, name: str) -> bool:
        return self._conn().execute(self.q["delete_schedule"], (name,)).rowcount == 1

    @_guarded()
    def schedules(self) -> list[Schedule]:
        return [_schedule(row) for row in self._conn().execute(self.q["schedules"]).fetchall()]

    @_guarded(retry_s=RUNNER_RETRY_S)
    def next_schedule_ms(self) -> int | None:
        row = self._conn().execute(self.q["next_schedule"]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @_guarded(retry_s=RUNNER_RETRY_S)
    def fire_schedules(self) -> list[tuple[str, str | None, str | None]]:
        """Enqueue one job for each schedule whose slot has come, and move it to its next slot.

        Returns (schedule, job id or None, error or None) per schedule fired. A schedule
        another runner is firing at the same moment is skipped (locked), so a slot fires once;
        replaying after a lost COMMIT finds the slot moved on already.
        """
        from queuectl.schedule import next_slot_ms

        now = self.now()
        fired: list[tuple[str, str | None, str | None]] = []
        with self._tx() as conn:
            default_retries = int(self._config(conn)["max_retries"])
            due = [_schedule(r) for r in conn.execute(self.q["due_schedules"], (now,)).fetchall()]
            for schedule in due:
                job_id: str | None = f"{schedule.name}.{schedule.next_at_ms}"
                error = None
                try:
                    job = new_job(schedule.job)
                    with conn.transaction():  # a savepoint: one bad schedule spoils no other
                        held = self._enqueue_one(conn, job, job_id, now, default_retries)  # type: ignore[arg-type]
                    job_id = held or job_id
                except QueuectlError as exc:
                    job_id, error = None, str(exc)
                except pg_errors.UniqueViolation:
                    job_id, error = None, f"job {job_id!r} already exists"
                next_at = next_slot_ms(
                    schedule.cron, schedule.every_s, schedule.tz, schedule.created_at_ms, now
                )
                conn.execute(
                    self.q["advance_schedule"],
                    {"now": now, "next_at": next_at, "name": schedule.name},
                )
                fired.append((schedule.name, job_id, error))
            if fired:
                conn.execute(self.q["pg_notify"])
        return fired

    # -- wakeups

    def notify(self) -> None:
        """Wake the runners of this database (best effort: they also poll slowly).

        The methods that make work available notify inside their own transaction already.
        """
        with contextlib.suppress(QueuectlError, psycopg.Error):
            self._conn().execute(self.q["pg_notify"])

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

    def __init__(self, store: PostgresStore) -> None:
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


def _runner(r: Sequence[Any], running: dict[str, list[str]]) -> Runner:
    return Runner(
        id=r[0], host=r[1], pid=r[2], pid_started=r[3], workers=r[4],
        queues=None if r[5] is None else list(r[5]), started_at_ms=r[6],
        heartbeat_at_ms=r[7], stop_requested=bool(r[8]), running=running.get(r[0], []),
    )  # fmt: skip


def _schedule(row: Sequence[Any]) -> Schedule:
    return Schedule(
        name=row[0], cron=row[1], every_s=row[2], tz=row[3], job=dict(row[4]),
        created_at_ms=row[5], last_at_ms=row[6], next_at_ms=row[7],
    )  # fmt: skip


def _scalar(cursor: psycopg.Cursor[Any]) -> Any:
    row = cursor.fetchone()
    assert row is not None
    return row[0]


def _new_id() -> str:
    return os.urandom(8).hex()


_REASONS = (
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"resolve host|translate host name|name or service not known", re.I), "unknown host"),
    (re.compile(r"timeout expired|timed out", re.I), "timed out"),
    (re.compile(r"no route to host", re.I), "no route to host"),
    (re.compile(r"network is unreachable", re.I), "network unreachable"),
    (re.compile(r"password authentication failed|no password supplied", re.I), "authentication failed"),
    (re.compile(r'(database "[^"]*" does not exist)'), r"\1"),
    (re.compile(r'(role "[^"]*" does not exist)'), r"\1"),
)  # fmt: skip


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


def _redact(url: str) -> str:
    """The URL without its password."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.password is not None:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            url = urlunsplit(parts._replace(netloc=netloc))
    return re.sub(r"(password=)[^&\s]*", r"\1***", url)
