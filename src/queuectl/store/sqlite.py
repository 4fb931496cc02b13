"""The SQLite store: one file in WAL mode, short IMMEDIATE transactions, wakeups over Unix sockets.

Several processes share the file. Writers serialise on SQLite's write lock (`BEGIN IMMEDIATE`
with a busy timeout, then a bounded retry), so a claim is atomic across processes. Each
thread gets its own connection.
"""

from __future__ import annotations

import functools
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from queuectl import lifecycle
from queuectl.clock import Clock
from queuectl.config import DEFAULTS
from queuectl.errors import (
    ConflictError,
    DuplicateJobError,
    InvalidInputError,
    QueuectlError,
    StoreError,
)
from queuectl.models import CANCELLED, COMPLETED, DEAD, PENDING, Job, NewJob, new_job
from queuectl.store import Claim, Runner, Schedule, lockholder
from queuectl.store.queries import load_queries, migrations
from queuectl.store.wakeup import SocketWakeup

T = TypeVar("T")
BUSY_TIMEOUT_S = 10.0
BUSY_RETRIES = 5
FAR_FUTURE = 2**62


def _translate(exc: sqlite3.Error, path: str) -> QueuectlError:
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


@functools.cache
def _newest_schema() -> int:
    return migrations("sqlite")[-1][0]


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


def _guarded(method: Callable[..., T]) -> Callable[..., T]:
    """Driver errors stop here: a lock becomes a bounded retry, anything else a StoreError."""

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> T:
        for attempt in range(BUSY_RETRIES + 1):
            try:
                return method(self, *args, **kwargs)
            except sqlite3.OperationalError as exc:
                if _busy(exc) and attempt < BUSY_RETRIES and not _holder_stopped(self.path):
                    time.sleep(0.01 * (2**attempt) * (0.5 + random.random()))
                    continue
                raise _translate(exc, self.path) from None
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from None
            except UnicodeEncodeError:
                # Undecodable bytes (argv) arrive as surrogates, which no stored text can hold.
                raise InvalidInputError(
                    "text that is not UTF-8 cannot be stored or looked up"
                ) from None
        raise AssertionError("unreachable")

    return wrapper


class SQLiteStore:
    """The Store on one SQLite file."""

    kind = "sqlite"

    def __init__(self, path: str, clock: Clock, durable: bool = True) -> None:
        self.path = path
        self.clock = clock
        self.durable = durable
        queries = load_queries("sqlite")
        columns = queries["job_columns"]
        self.q = {name: sql.replace("{job_columns}", columns) for name, sql in queries.items()}
        self._local = threading.local()
        self._identity: tuple[int, int] | None = None
        self._wakeup = SocketWakeup(path)
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
            try:
                _switch_to_wal(conn)
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
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            # A newer queuectl may have migrated the file since this process opened it: its
            # writes could break the new schema's rules, so they stop here, on one line.
            self._refuse_newer(int(conn.execute("PRAGMA user_version").fetchone()[0]))
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _refuse_newer(self, version: int) -> None:
        newest = _newest_schema()
        if version > newest:
            raise StoreError(
                f"{self.path}: written by a newer queuectl (schema {version}, this one knows "
                f"{newest}); upgrade queuectl"
            )

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
        self._wakeup.close()

    def now(self) -> int:
        return self.clock.now_ms()

    # -- schema

    @_guarded
    def migrate(self) -> int:
        """Bring the schema to the newest version; refuse a file from a newer queuectl."""
        known = migrations("sqlite")
        newest = known[-1][0]
        conn = self.conn
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        self._refuse_newer(version)
        if version == newest:
            return version
        # The write lock first, then the version again: of processes opening a new file at
        # once, one migrates and the others wait here, then find nothing left to do. (Reading
        # first and upgrading to a write would deadlock, which no busy timeout resolves.)
        with self._write() as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            for number, _name, sql in known:
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

    @_guarded
    def verify(self) -> None:
        """Check the whole file's structure; StoreError names the first problem."""
        problems = [str(row[0]) for row in self.conn.execute(self.q["verify"])]
        if problems != ["ok"]:
            first = " ".join(problems[0].replace("***", "").split("\n", 2)[:2]).strip()
            raise StoreError(f"{self.path}: the database is corrupt ({first}); restore a backup")

    def describe(self) -> dict[str, Any]:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        return {"kind": self.kind, "target": self.path, "schema_version": version}

    # -- jobs

    def _row_to_job(self, row: Sequence[Any]) -> Job:
        return Job(
            id=row[1], command=row[2], state=row[3], queue=row[4], priority=row[5],
            attempts=row[6], max_retries=row[7], timeout=row[8], run_at_ms=row[9],
            depends_on=json.loads(row[10]), no_retry_exit_codes=json.loads(row[11]),
            unique_key=row[12], cwd=row[13], env=json.loads(row[14]), created_at_ms=row[15],
            updated_at_ms=row[16], started_at_ms=row[17], finished_at_ms=row[18],
            exit_code=row[19], last_error=row[20], duration_ms=row[21], lease_owner=row[22],
            lease_expires_at_ms=row[23],
        )  # fmt: skip

    def _config(self, conn: sqlite3.Connection) -> dict[str, float]:
        config = dict(DEFAULTS)
        for key, value in conn.execute(self.q["config_all"]):
            if key in config:
                config[key] = json.loads(value)
        return config

    @_guarded
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert every job or none; a held unique_key yields the job that holds it."""
        if not jobs:
            return []
        now = self.now()
        ids: list[str] = []
        plain = all(not j.depends_on and j.unique_key is None for j in jobs)
        with self._write() as conn:
            default_retries = int(self._config(conn)["max_retries"])
            rows = []
            for job in jobs:
                job_id = job.id or _new_id()
                ids.append(job_id)
                if plain:
                    rows.append(self._insert_row(job, job_id, now, default_retries, 0, None))
                else:
                    existing = self._enqueue_one(conn, job, job_id, now, default_retries)
                    if existing is not None:
                        ids[-1] = existing
            inserted_before = conn.total_changes
            try:
                if plain:
                    conn.executemany(self.q["insert_job"], rows)
            except sqlite3.IntegrityError:
                # The rows before the failing one went in (until the rollback): name that one.
                failed_at = conn.total_changes - inserted_before
                raise self._duplicate(conn, ids[: failed_at + 1]) from None
            if plain:
                # Nothing was decided by the database: the rows are the jobs, no need to read back.
                created = [_inserted_job(job, row) for job, row in zip(jobs, rows, strict=True)]
            else:
                found = {job.id: job for job in self._jobs_by_ids(conn, ids)}
                created = [found[job_id] for job_id in ids]
        self.notify()
        return created

    def _insert_row(
        self, job: NewJob, job_id: str, now: int, default_retries: int, waiting_on: int,
        cancelled_by: str | None,
    ) -> tuple[Any, ...]:  # fmt: skip
        run_at = job.first_run_at(now)
        return (
            job_id, job.command, CANCELLED if cancelled_by else PENDING, job.queue, job.priority,
            default_retries if job.max_retries is None else job.max_retries, job.timeout, run_at,
            _json_list(job.depends_on), waiting_on, _json_list(job.no_retry_exit_codes),
            job.unique_key, job.cwd, json.dumps(job.env) if job.env else "{}", now, now,
            now if cancelled_by else None, cancelled_by, run_at > now,
        )  # fmt: skip

    def _enqueue_one(
        self, conn: sqlite3.Connection, job: NewJob, job_id: str, now: int, default_retries: int
    ) -> str | None:
        """Insert one job with its dependencies; the id of the holder of its unique_key, if any."""
        if job.unique_key is not None:
            held = conn.execute(self.q["find_unique"], (job.unique_key,)).fetchone()
            if held:
                return str(held[0])
        waiting_on, cancelled_by = 0, None
        if job.depends_on:
            states = dict(conn.execute(self.q["dep_states"], (json.dumps(job.depends_on),)))
            unknown = [dep for dep in job.depends_on if dep not in states]
            if unknown:
                raise InvalidInputError(f"depends_on: no job {unknown[0]!r}")
            waiting_on = sum(1 for dep in job.depends_on if states[dep] != COMPLETED)
            for dep in job.depends_on:
                if states[dep] in (DEAD, CANCELLED):
                    cancelled_by = f"dependency {dep} is {states[dep]}"
                    break
        try:
            conn.execute(
                self.q["insert_job"],
                self._insert_row(job, job_id, now, default_retries, waiting_on, cancelled_by),
            )
        except sqlite3.IntegrityError:
            raise self._duplicate(conn, [job_id]) from None
        for dep in job.depends_on:
            conn.execute(self.q["insert_dep"], (dep, job_id))
        return None

    def _duplicate(self, conn: sqlite3.Connection, ids: list[str]) -> DuplicateJobError:
        """The error for a batch whose last id failed to insert."""
        seen: set[str] = set()
        for job_id in ids:
            if job_id in seen:
                return DuplicateJobError(f"job {job_id!r} appears twice in the batch")
            seen.add(job_id)
        return DuplicateJobError(f"job {ids[-1]!r} already exists")

    def _jobs_by_ids(self, conn: sqlite3.Connection, ids: Sequence[str]) -> list[Job]:
        return [
            self._row_to_job(r)
            for r in conn.execute(self.q["jobs_by_ids"], (json.dumps(list(ids)),))
        ]

    @_guarded
    def finish_and_claim(
        self, owner: str, outcomes: Sequence[lifecycle.Outcome], want: int,
        queues: Sequence[str] | None, lease_s: float,
    ) -> tuple[dict[str, lifecycle.Settlement], list[Claim]]:  # fmt: skip
        """Settle finished attempts, then claim up to `want` due jobs, in one transaction.

        Returns how each outcome was settled (fenced-out ones are missing) and the claims.
        """
        now = self.now()
        claims: list[Claim] = []
        settled: dict[str, lifecycle.Settlement] = {}
        self._check_file()
        with self._write() as conn:
            if outcomes:
                settled = self._settle(conn, owner, outcomes, now)
            if want > 0:
                conn.execute(self.q["promote_due"], (now,))
                rows = conn.execute(
                    self.q["claim"],
                    {
                        "owner": owner, "now": now, "lease_until": now + round(lease_s * 1000),
                        "queues": None if queues is None else json.dumps(list(queues)),
                        "want": want,
                    },
                ).fetchall()  # fmt: skip
                rows.sort(key=lambda r: (-r[7], r[8], r[9]))
                claims = [
                    Claim(r[0], r[1], r[2], r[3], json.loads(r[4]), r[5], r[6], r[7]) for r in rows
                ]
        return settled, claims

    def _settle(
        self, conn: sqlite3.Connection, owner: str, outcomes: Sequence[lifecycle.Outcome], now: int
    ) -> dict[str, lifecycle.Settlement]:
        """Apply the outcomes whose attempt is still ours; how each was settled."""
        ids = json.dumps([outcome.job_id for outcome in outcomes])
        rows = conn.execute(self.q["fenced_jobs"], (ids, owner)).fetchall()
        ours = {r[0]: lifecycle.Fence(r[1], r[2], json.loads(r[3])) for r in rows}
        decided = lifecycle.settle_ours(outcomes, ours, self._config(conn), random.random)
        for outcome, settlement in decided:
            conn.execute(
                self.q["settle_job"], lifecycle.settle_params(outcome, settlement, owner, now)
            )
            if outcome.output is not None:
                conn.execute(self.q["save_output"], (outcome.job_id, outcome.output))
            if settlement.state != COMPLETED:
                self._after_transition(conn, outcome.job_id, settlement.state, now)
        with_dependants = {r[0] for r in rows if r[4]}
        completed = [
            o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants
        ]
        if completed:
            conn.execute(self.q["unblock_dependants"], {"ids": json.dumps(completed)})
        return {outcome.job_id: settlement for outcome, settlement in decided}

    def _after_transition(
        self, conn: sqlite3.Connection, job_id: str, state: str, now: int
    ) -> None:
        """Dependants learn that a dependency completed, or are cancelled with it."""
        if state == COMPLETED:
            conn.execute(self.q["unblock_dependants"], {"ids": json.dumps([job_id])})
        elif state in (DEAD, CANCELLED):
            conn.execute(
                self.q["cancel_dependants"],
                {"id": job_id, "reason": f"dependency {job_id} is {state}", "now": now},
            )

    @_guarded
    def release(self, owner: str, job_id: str, attempt: int) -> bool:
        """Return a job stopped by a runner's shutdown to pending, giving its attempt back."""
        with self._write() as conn:
            cursor = conn.execute(
                self.q["release_job"],
                {"now": self.now(), "id": job_id, "owner": owner, "attempt": attempt},
            )
        if cursor.rowcount:
            self.notify()
        return cursor.rowcount == 1

    @_guarded
    def save_output(self, job_id: str, data: bytes) -> None:
        with self._write() as conn:
            conn.execute(self.q["save_output"], (job_id, data))

    @_guarded
    def owned_jobs(self, owner: str) -> dict[str, int]:
        return dict(self.conn.execute(self.q["owned_jobs"], (owner,)).fetchall())

    @_guarded
    def next_due_ms(self) -> int | None:
        row = self.conn.execute(self.q["next_due"], (self.now(),)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @_guarded
    def get(self, job_id: str) -> Job | None:
        row = self.conn.execute(self.q["get_job"], (job_id,)).fetchone()
        return None if row is None else self._row_to_job(row)

    @_guarded
    def list_jobs(
        self, state: str | None, queue: str | None, limit: int | None, before_seq: int | None
    ) -> list[tuple[int, Job]]:
        rows = self.conn.execute(
            self.q["list_jobs"],
            {
                "state": state, "queue": queue, "limit": -1 if limit is None else limit,
                "before": FAR_FUTURE if before_seq is None else before_seq,
            },
        )  # fmt: skip
        return [(row[0], self._row_to_job(row)) for row in rows]

    @_guarded
    def output(self, job_id: str) -> bytes | None:
        row = self.conn.execute(self.q["get_output"], (job_id,)).fetchone()
        return None if row is None else bytes(row[0])

    @_guarded
    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue, then per state."""
        result: dict[str, dict[str, int]] = {}
        for queue, state, count in self.conn.execute(self.q["counts"]):
            result.setdefault(queue, {})[state] = count
        return result

    @_guarded
    def done_since(self, since_ms: int) -> int:
        return int(self.conn.execute(self.q["done_since"], (since_ms,)).fetchone()[0])

    @_guarded
    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel jobs that may still run; returns them as they were before (all or nothing)."""
        now = self.now()
        with self._write() as conn:
            before = {job.id: job for job in self._jobs_by_ids(conn, job_ids)}
            for job_id in job_ids:
                if job_id not in before:
                    from queuectl.errors import NotFoundError

                    raise NotFoundError(f"no job {job_id!r}")
                job = before[job_id]
                if job.state not in (PENDING, "failed", "processing"):
                    from queuectl.errors import WrongStateError

                    raise WrongStateError(f"job {job_id!r} is {job.state}; it cannot be cancelled")
                conn.execute(self.q["cancel_job"], {"id": job_id, "now": now})
                self._after_transition(conn, job_id, CANCELLED, now)
        self.notify()
        return [before[job_id] for job_id in job_ids]

    @_guarded
    def retry_dead(self, job_ids: Sequence[str] | None) -> list[str]:
        """Move dead jobs back to pending with attempts reset; every one named must be dead."""
        now = self.now()
        with self._write() as conn:
            if job_ids is None:
                job_ids = [row[0] for row in conn.execute(self.q["dead_ids"])]
            else:
                states = {job.id: job.state for job in self._jobs_by_ids(conn, job_ids)}
                for job_id in job_ids:
                    if job_id not in states:
                        from queuectl.errors import NotFoundError

                        raise NotFoundError(f"no job {job_id!r}")
                    if states[job_id] != DEAD:
                        from queuectl.errors import WrongStateError

                        raise WrongStateError(f"job {job_id!r} is {states[job_id]}, not dead")
            for job_id in job_ids:
                try:
                    conn.execute(self.q["retry_dead"], {"id": job_id, "now": now})
                except sqlite3.IntegrityError:
                    raise ConflictError(
                        f"job {job_id!r} cannot be retried: an active job holds its unique_key"
                    ) from None
        if job_ids:
            self.notify()
        return list(job_ids)

    @_guarded
    def purge(self, states: Sequence[str], finished_before_ms: int) -> int:
        with self._write() as conn:
            cursor = conn.execute(
                self.q["purge"], {"states": json.dumps(list(states)), "before": finished_before_ms}
            )
        return cursor.rowcount

    # -- runners and leases

    @_guarded
    def register_runner(self, runner: Runner) -> None:
        with self._write() as conn:
            conn.execute(
                self.q["register_runner"],
                (
                    runner.id, runner.host, runner.pid, runner.pid_started, runner.workers,
                    None if runner.queues is None else json.dumps(runner.queues),
                    runner.started_at_ms, runner.heartbeat_at_ms,
                ),
            )  # fmt: skip

    @_guarded
    def heartbeat(self, owner: str, lease_s: float) -> bool | None:
        """Renew the runner and its leases; whether a stop was requested (None: unregistered)."""
        self._check_file()
        now = self.now()
        with self._write() as conn:
            row = conn.execute(self.q["beat_runner"], (now, owner)).fetchone()
            conn.execute(self.q["renew_leases"], (now + round(lease_s * 1000), owner))
        return None if row is None else bool(row[0])

    @_guarded
    def unregister_runner(self, owner: str) -> None:
        with self._write() as conn:
            conn.execute(self.q["unregister_runner"], (owner,))

    @_guarded
    def runners(self) -> list[Runner]:
        conn = self.conn
        running: dict[str, list[str]] = {}
        for owner, job_id in conn.execute(self.q["running_jobs"]):
            running.setdefault(owner, []).append(job_id)
        return [
            Runner(
                id=r[0],
                host=r[1],
                pid=r[2],
                pid_started=r[3],
                workers=r[4],
                queues=None if r[5] is None else json.loads(r[5]),
                started_at_ms=r[6],
                heartbeat_at_ms=r[7],
                stop_requested=bool(r[8]),
                running=running.get(r[0], []),
            )
            for r in conn.execute(self.q["runners"])
        ]

    @_guarded
    def request_stop(self) -> int:
        with self._write() as conn:
            count = conn.execute(self.q["request_stop"]).rowcount
        self.notify()
        return int(count)

    @_guarded
    def reap(self, dead_owners: Sequence[str]) -> list[str]:
        """Recover the jobs of runners known dead and of expired leases as failed attempts."""
        now = self.now()
        recovered: list[str] = []
        if not dead_owners and not self.conn.execute(self.q["expired_jobs"], (now,)).fetchone():
            return recovered
        with self._write() as conn:
            victims: list[tuple[str, int, str]] = [
                (job_id, attempt, owner)
                for owner in dead_owners
                for job_id, attempt in conn.execute(self.q["jobs_of_owner"], (owner,))
            ]
            victims += conn.execute(self.q["expired_jobs"], (now,)).fetchall()
            for owner in dead_owners:
                conn.execute(self.q["unregister_runner"], (owner,))
            for job_id, attempt, owner in dict.fromkeys(victims):
                lost = [lifecycle.Outcome(job_id, attempt, None, "worker lost", now, now)]
                self._settle(conn, owner, lost, now)
                recovered.append(job_id)
        if recovered:
            self.notify()
        return recovered

    # -- configuration and queues

    @_guarded
    def config(self) -> dict[str, float]:
        return self._config(self.conn)

    @_guarded
    def set_config(self, key: str, value: float) -> None:
        with self._write() as conn:
            conn.execute(self.q["config_set"], (key, json.dumps(value)))
        self.notify()

    @_guarded
    def queues(self) -> dict[str, bool]:
        return {name: bool(paused) for name, paused in self.conn.execute(self.q["queues"])}

    @_guarded
    def set_paused(self, queue: str, paused: bool) -> None:
        with self._write() as conn:
            conn.execute(self.q["set_paused"], (queue, int(paused)))
        self.notify()

    # -- schedules

    @_guarded
    def add_schedule(self, schedule: Schedule) -> None:
        """Create or replace a schedule by name."""
        with self._write() as conn:
            conn.execute(
                self.q["upsert_schedule"],
                {
                    "name": schedule.name, "cron": schedule.cron, "every_s": schedule.every_s,
                    "tz": schedule.tz, "job": json.dumps(schedule.job), "now": schedule.created_at_ms,
                    "next_at": schedule.next_at_ms,
                },
            )  # fmt: skip
        self.notify()

    @_guarded
    def remove_schedule(self, name: str) -> bool:
        with self._write() as conn:
            return conn.execute(self.q["delete_schedule"], (name,)).rowcount == 1

    @_guarded
    def schedules(self) -> list[Schedule]:
        return [_schedule(row) for row in self.conn.execute(self.q["schedules"])]

    @_guarded
    def next_schedule_ms(self) -> int | None:
        row = self.conn.execute(self.q["next_schedule"]).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    @_guarded
    def fire_schedules(self) -> list[tuple[str, str | None, str | None]]:
        """Enqueue one job for each schedule whose slot has come, and move it to its next slot.

        Returns (schedule, job id or None, error or None) per schedule fired.
        """
        from queuectl.schedule import next_slot_ms

        now = self.now()
        fired: list[tuple[str, str | None, str | None]] = []
        with self._write() as conn:
            default_retries = int(self._config(conn)["max_retries"])
            for schedule in [_schedule(r) for r in conn.execute(self.q["due_schedules"], (now,))]:
                job_id: str | None = f"{schedule.name}.{schedule.next_at_ms}"
                error = None
                try:
                    job = new_job(schedule.job)
                    held = self._enqueue_one(conn, job, job_id, now, default_retries)  # type: ignore[arg-type]
                    job_id = held or job_id
                except QueuectlError as exc:
                    job_id, error = None, str(exc)
                next_at = next_slot_ms(
                    schedule.cron, schedule.every_s, schedule.tz, schedule.created_at_ms, now
                )
                conn.execute(
                    self.q["advance_schedule"],
                    {"now": now, "next_at": next_at, "name": schedule.name},
                )
                fired.append((schedule.name, job_id, error))
        if fired:
            self.notify()
        return fired

    # -- wakeups

    def notify(self) -> None:
        """Wake the runners of this store (best effort: they also poll slowly)."""
        self._wakeup.notify()

    def listener(self, name: str) -> SocketWakeup | None:
        """Wakeups for one runner: a socket in the store's private folder."""
        return self._wakeup if self._wakeup.bind(name) is not None else None


def _schedule(row: Sequence[Any]) -> Schedule:
    return Schedule(
        name=row[0], cron=row[1], every_s=row[2], tz=row[3], job=json.loads(row[4]),
        created_at_ms=row[5], last_at_ms=row[6], next_at_ms=row[7],
    )  # fmt: skip


def _inserted_job(job: NewJob, row: Sequence[Any]) -> Job:
    """The job just inserted as `row` (in insert_job's column order)."""
    return Job(
        id=row[0], command=row[1], state=row[2], queue=row[3], priority=row[4], attempts=0,
        max_retries=row[5], timeout=row[6], run_at_ms=row[7], depends_on=list(job.depends_on),
        no_retry_exit_codes=list(job.no_retry_exit_codes), unique_key=row[11], cwd=row[12],
        env=dict(job.env), created_at_ms=row[14], updated_at_ms=row[15],
        finished_at_ms=row[16], last_error=row[17],
    )  # fmt: skip


def _json_list(values: list[Any]) -> str:
    return json.dumps(values) if values else "[]"


def _new_id() -> str:
    return os.urandom(8).hex()


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
