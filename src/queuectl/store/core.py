"""SQLStore: every flow of the queue written once, over a dialect's connection and named SQL.

A dialect (sqlite.py, postgres.py) supplies only what differs between databases: a connection
and a write transaction, how driver errors are retried or translated (`_attempt`), how list and
JSON parameters are encoded, which driver error is a unique violation, wakeups, migrations.
Rows are read by column name (sqlite3.Row, psycopg's dict_row) and mapped to records here.
"""

from __future__ import annotations

import functools
import heapq
import os
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Concatenate, ParamSpec, TypeVar

from queuectl import lifecycle
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
from queuectl.flow import window_opens_at
from queuectl.hook import Event, hook_job, made_by
from queuectl.models import (
    CANCELLABLE_STATES,
    CANCELLED,
    COMPLETED,
    DEAD,
    FINISHED_STATES,
    PENDING,
    PROCESSING,
    Job,
    NewJob,
    new_job,
)
from queuectl.store import (
    BULK_BATCH,
    OVER_ALL_BOUNDS,
    Attempt,
    Bucket,
    Claim,
    Exchange,
    Firing,
    Hook,
    Housekeeping,
    Output,
    Page,
    QueueSettings,
    Runner,
    Schedule,
    Totals,
)
from queuectl.store.queries import claim_changes, load_queries

if TYPE_CHECKING:
    from queuectl.clock import Clock

P = ParamSpec("P")
T = TypeVar("T")
S = TypeVar("S", bound="SQLStore")

#: A unique_key taken by a concurrent enqueue between our look and our insert is looked up
#: again; this many times at most.
CONFLICT_RETRIES = 5
CONFIG_TTL_S = 1.0  # how stale the configuration used for settling may be
FAR_FUTURE = 2**62
#: Reading the counts folds their deltas into the base once more than this many piled up.
COMPACT_AFTER_DELTAS = 1000
#: `list_jobs` by (state given, queue given): one query per combination, each walking its index.
LIST_QUERIES = {
    (False, False): "list_jobs",
    (True, False): "list_jobs_by_state",
    (False, True): "list_jobs_by_queue",
    (True, True): "list_jobs_by_queue_state",
}
_INCLUDE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
FLOW_SLACK = 4  # candidates read beyond a limited queue's room (see _claim_flow)


def operation(
    *, runner: bool = False, replayable: bool = True
) -> Callable[[Callable[Concatenate[S, P], T]], Callable[Concatenate[S, P], T]]:
    """Mark a store method as one operation, run through its dialect's `_attempt`.

    `runner`: a runner calls it and would rather wait out an unreachable store than fail.
    `replayable`: running it twice equals running it once, so a connection lost during
    COMMIT may be answered by running it again.
    """

    def decorate(method: Callable[Concatenate[S, P], T]) -> Callable[Concatenate[S, P], T]:
        def wrapper(self: S, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return self._attempt(lambda: method(self, *args, **kwargs), runner, replayable)

        functools.update_wrapper(wrapper, method)
        return wrapper

    return decorate


class SQLStore:
    """The Store over any SQL dialect; subclasses supply the connection and the encodings."""

    kind: ClassVar[str]
    #: The driver's error for a unique violation.
    unique_violation: ClassVar[type[Exception]]
    clock: Clock
    q: dict[str, str]

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        queries = load_queries(self.kind)

        # A block names another as `{name}` to include it (which may include others in turn): a
        # statement written once serves on its own and inside larger ones.
        def expand(sql: str) -> str:
            return _INCLUDE.sub(lambda m: expand(queries[m[1]]) if m[1] in queries else m[0], sql)

        self.q = {name: expand(sql) for name, sql in queries.items()}
        self._config_cache: tuple[float, dict[str, float]] | None = None
        self.compact_after = COMPACT_AFTER_DELTAS  # tests lower it to compact at every read
        self._hooks_cache: tuple[float, list[Hook]] | None = None
        self._empty_list, self._empty_dict = self._json([]), self._json({})
        #: The jobs this store claimed that hold a limited queue's slot or a lock, with which:
        #: (queue or None, lock key or None).
        self._held: dict[str, tuple[str | None, str | None]] = {}
        #: The limited queues a claim counts in one statement (flow_claim_counted), as the last
        #: flow claim found them; None where it could not (no limit, a rate, a lock due).
        self._counted: list[str] | None = None

    # -- what a dialect supplies

    def _attempt(self, call: Callable[[], T], runner: bool, replayable: bool) -> T:
        """Run one operation: retry what the dialect may retry, translate driver errors."""
        raise NotImplementedError

    def _connection(self) -> Any:
        """This thread's connection, for reads outside a transaction."""
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[Any]:
        """One write transaction; yields the connection."""
        raise NotImplementedError

    def _many(self, conn: Any, name: str, rows: Sequence[Sequence[Any] | dict[str, Any]]) -> None:
        """Run one named statement for every row of parameters, in few round trips."""
        raise NotImplementedError

    def _insert_jobs(self, conn: Any, rows: Sequence[Sequence[Any]]) -> None:
        """Insert a batch of `insert_jobs` rows, in as few statements as the driver allows."""
        raise NotImplementedError

    def _count_inserted(self, conn: Any, counts: dict[tuple[str, str], int]) -> None:
        """Add jobs just inserted to the counters: how many per (queue, state)."""
        raise NotImplementedError

    def _count_inserted_ids(self, conn: Any, ids: Sequence[str]) -> None:
        """Add to the counters those of these new ids that were inserted (some may not be)."""
        raise NotImplementedError

    def _list(self, values: Sequence[Any]) -> Any:
        """A list as a query parameter."""
        raise NotImplementedError

    def _refuse_newer_schema(self, conn: Any) -> None:
        """Raise NewerSchemaError if a newer queuectl has migrated the store (where the
        dialect's writes do not check it already)."""

    # -- schema

    def _refuse_older_runners(self, conn: Any, version: int) -> None:
        """Refuse to migrate from `version` past a migration that changes claims while a runner
        is registered and alive: it knows no schema newer than `version` (a runner of a newer
        queuectl would have migrated the store already), so it would claim and settle by the
        old rules, ignoring limits and locks it does not know. Runs inside the migration's
        transaction, before any change."""
        changes = claim_changes(self.kind, version)
        if not changes or version == 0:
            return
        from queuectl.runner.liveness import is_dead

        runners = [_runner(r, None, []) for r in conn.execute(self.q["runners"]).fetchall()]
        if not runners:
            return
        now, lease_s = self.now(), float(self._config(conn)["lease_seconds"])
        live = [r for r in runners if not is_dead(r, now, lease_s)]
        if live:
            first = live[0]
            raise StoreError(
                f"cannot upgrade the store to schema {changes[-1]}, which changes how jobs are "
                f"claimed, while runner {first.id} (host {first.host}, pid {first.pid}) of an "
                f"older queuectl is up{f' (and {len(live) - 1} more)' if len(live) > 1 else ''}:"
                " stop it first with `queuectl worker stop` (of its version), then try again"
            )

    def _json(self, value: Any) -> Any:
        """A JSON value as a query parameter."""
        raise NotImplementedError

    def _from_json(self, value: Any) -> Any:
        """A JSON column as Python data."""
        raise NotImplementedError

    def _wake(self, conn: Any) -> None:
        """Wake the runners once the current transaction commits (work may be available)."""
        raise NotImplementedError

    def _json_value(self, value: Any) -> Any:
        """A JSON value a query built (json_agg, json_group_array...) as Python data; None
        stays None (an aggregate of no rows, on PostgreSQL)."""
        return None if value is None else self._from_json(value)

    # -- helpers

    def now(self) -> int:
        return self.clock.now_ms()

    def _value(self, conn: Any, name: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """The `value` column of a one-row query (None without a row)."""
        row = conn.execute(self.q[name], params).fetchone()
        return None if row is None else row["value"]

    def _job(self, row: Any) -> Job:
        """The one mapping of a `job_columns` row to a Job."""
        return Job(
            id=row["id"],
            command=row["command"],
            state=row["state"],
            queue=row["queue"],
            priority=row["priority"],
            attempts=row["attempts"],
            max_retries=row["max_retries"],
            timeout=row["timeout"],
            run_at_ms=row["run_at"],
            depends_on=list(self._from_json(row["depends_on"])),
            no_retry_exit_codes=list(self._from_json(row["no_retry_exit_codes"])),
            unique_key=row["unique_key"],
            cwd=row["cwd"],
            env=dict(self._from_json(row["env"])),
            created_at_ms=row["created_at"],
            updated_at_ms=row["updated_at"],
            started_at_ms=row["started_at"],
            finished_at_ms=row["finished_at"],
            exit_code=row["exit_code"],
            last_error=row["last_error"],
            duration_ms=row["duration_ms"],
            lease_owner=row["lease_owner"],
            lease_expires_at_ms=row["lease_expires_at"],
            lock=row["lock_key"],
            made_by=row["made_by"],
        )

    def _schedule(self, row: Any) -> Schedule:
        return Schedule(
            name=row["name"],
            cron=row["cron"],
            every_s=row["every_s"],
            tz=row["tz"],
            job=dict(self._from_json(row["job"])),
            created_at_ms=row["created_at"],
            last_at_ms=row["last_at"],
            next_at_ms=row["next_at"],
        )

    def _jobs_by_ids(self, conn: Any, ids: Sequence[str]) -> list[Job]:
        return [self._job(r) for r in conn.execute(self.q["jobs_by_ids"], (self._list(ids),))]

    def _config(self, conn: Any) -> dict[str, float]:
        config = dict(DEFAULTS)
        for row in conn.execute(self.q["config_all"]):
            if row["key"] in config:
                config[row["key"]] = self._from_json(row["value"])
        return config

    def _settle_config(self, conn: Any) -> dict[str, float]:
        """The configuration for settling, read at most every CONFIG_TTL_S: a round trip saved
        per settlement, and runners pick changes up within seconds anyway (SPEC section 6)."""
        cached = self._config_cache
        if cached is None or time.monotonic() - cached[0] > CONFIG_TTL_S:
            cached = self._config_cache = (time.monotonic(), self._config(conn))
        return cached[1]

    # -- enqueue

    @operation(replayable=False)
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        if not jobs:
            return []
        now = self.now()
        tried: list[str] = []  # the ids inserted, for naming a duplicate
        plain = all(not job.depends_on and job.unique_key is None for job in jobs)
        try:
            with self._transaction() as conn:
                default_retries = int(self._config(conn)["max_retries"])
                if plain:
                    # Nothing is decided by the database: the rows are the jobs, no read-back.
                    fresh = iter(_new_ids(len(jobs)))
                    tried = [job.id or next(fresh) for job in jobs]
                    rows = [
                        self._insert_row(job, job_id, now, default_retries, 0, None)
                        for job, job_id in zip(jobs, tried, strict=True)
                    ]
                    self._insert_plain(conn, rows)
                    created = [_inserted_job(job, row) for job, row in zip(jobs, rows, strict=True)]
                else:
                    ids: list[str] = []  # a unique_key's holder stands for the job not inserted
                    for job in jobs:
                        job_id = job.id or _new_id()
                        tried.append(job_id)
                        held = self._insert_one(conn, job, job_id, now, default_retries)
                        if held is not None:
                            tried.pop()
                        ids.append(held or job_id)
                    found = {job.id: job for job in self._jobs_by_ids(conn, ids)}
                    created = [found[job_id] for job_id in ids]
                self._wake(conn)
        except self.unique_violation:
            raise self._duplicate(tried) from None
        return created

    @operation(replayable=False)
    def enqueue_batches(
        self,
        batches: Iterable[Sequence[tuple[str, NewJob]]],
        each: Callable[[list[Job]], None],
    ) -> int:
        """Enqueue every batch of (label, job) in one transaction, or none: a stream of any
        length in the memory of one batch. `each` gets each batch's jobs once inserted (before
        the commit); an error is prefixed with the label of the job it concerns.

        A job may depend only on jobs already stored or earlier in the stream, so no cycle can
        form. Each batch runs in a savepoint, so a duplicate id can be named from inside the
        transaction: a rolled-back batch leaves the earlier ones there to look at.
        """
        now = self.now()
        total = 0
        try:
            with self._transaction() as conn:
                default_retries = int(self._config(conn)["max_retries"])
                for batch in batches:
                    conn.execute(self.q["savepoint"])
                    try:
                        created = self._insert_batch(conn, batch, now, default_retries)
                    except self.unique_violation:
                        conn.execute(self.q["rollback_savepoint"])
                        taken = {job.id for job in self._jobs_by_ids(conn, _ids(batch))}
                        raise _StreamDuplicate(batch, taken) from None
                    conn.execute(self.q["release_savepoint"])
                    each(created)
                    total += len(created)
                if total:
                    self._wake(conn)
        except _StreamDuplicate as duplicate:
            raise self._stream_duplicate(duplicate) from None
        return total

    def _stream_duplicate(self, duplicate: _StreamDuplicate) -> DuplicateJobError:
        """The error for a refused stream (rolled back by now), naming the first id of the
        failing batch that was stored before the stream, or earlier in it."""
        existing = {job.id for job in self._jobs_by_ids(self._connection(), _ids(duplicate.batch))}
        seen: set[str] = set()
        for label, job in duplicate.batch:
            where = f"{label}: " if label else ""
            if job.id in existing:
                return DuplicateJobError(f"{where}job {job.id!r} already exists")
            if job.id in duplicate.taken or job.id in seen:
                return DuplicateJobError(f"{where}job {job.id!r} appears twice in the batch")
            if job.id is not None:
                seen.add(job.id)
        return DuplicateJobError("a job in the batch already exists")

    def _insert_batch(
        self, conn: Any, batch: Sequence[tuple[str, NewJob]], now: int, default_retries: int
    ) -> list[Job]:
        """One batch of a stream, as enqueue_many inserts its jobs."""
        if all(not job.depends_on and job.unique_key is None for _, job in batch):
            fresh = iter(_new_ids(len(batch)))
            rows = [
                self._insert_row(job, job.id or next(fresh), now, default_retries, 0, None)
                for _, job in batch
            ]
            self._insert_plain(conn, rows)
            return [_inserted_job(job, row) for (_, job), row in zip(batch, rows, strict=True)]
        ids = []
        for label, job in batch:
            job_id = job.id or _new_id()
            try:
                held = self._insert_one(conn, job, job_id, now, default_retries)
            except InvalidInputError as exc:
                raise InvalidInputError(f"{label}: {exc}" if label else str(exc)) from None
            ids.append(held or job_id)
        found = {job.id: job for job in self._jobs_by_ids(conn, ids)}
        return [found[job_id] for job_id in ids]

    def _insert_plain(self, conn: Any, rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows of `_insert_row` that nothing can refuse but a duplicate id, and count
        them, once for the batch."""
        self._insert_jobs(conn, rows)
        self._count_inserted(conn, Counter((row[3], row[2]) for row in rows))

    def _insert_row(
        self,
        job: NewJob,
        job_id: str,
        now: int,
        default_retries: int,
        waiting_on: int,
        cancelled_by: str | None,
    ) -> tuple[Any, ...]:
        """The parameters of `insert_job(s)`, in their column order."""
        # Once per job of a bulk enqueue: the common case (due now, empty lists) without calls.
        run_at = now if job.run_at_ms is None and not job.delay_s else job.first_run_at(now)
        max_retries = default_retries if job.max_retries is None else job.max_retries
        return (
            job_id,
            job.command,
            CANCELLED if cancelled_by else PENDING,
            job.queue,
            job.priority,
            max_retries,
            job.timeout,
            run_at,
            self._json(job.depends_on) if job.depends_on else self._empty_list,
            waiting_on,
            self._json(job.no_retry_exit_codes) if job.no_retry_exit_codes else self._empty_list,
            job.unique_key,
            job.cwd,
            self._json(job.env) if job.env else self._empty_dict,
            now,
            now,
            now if cancelled_by else None,
            cancelled_by,
            run_at > now,
            job.lock,
        )

    def _insert_one(
        self, conn: Any, job: NewJob, job_id: str, now: int, default_retries: int
    ) -> str | None:
        """Insert one job with its dependencies; the id of its unique_key's holder, if any."""
        waiting_on, cancelled_by = 0, None
        if job.depends_on:
            states = {
                r["id"]: r["state"]
                for r in conn.execute(self.q["dep_states"], (self._list(job.depends_on),))
            }
            unknown = [dep for dep in job.depends_on if dep not in states]
            if unknown:
                raise InvalidInputError(
                    f"depends_on: no job {unknown[0]!r} (a job may depend on jobs already "
                    f"enqueued or on earlier jobs of its batch)"
                )
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
                    return str(held["id"])
            if conn.execute(self.q["insert_job"], row).fetchone() is not None:
                self._count_inserted(conn, {(job.queue, row[2]): 1})
                break
        else:
            raise StoreError(f"unique_key {job.unique_key!r} kept changing hands; try again")
        if job.depends_on:
            self._many(conn, "insert_dep", [(dep, job_id) for dep in job.depends_on])
        return None

    def _duplicate(self, tried: list[str]) -> DuplicateJobError:
        """The error for a refused batch (rolled back by now), naming the id that failed: the
        first that exists already or repeats an earlier one, in insertion order."""
        existing = {job.id for job in self._jobs_by_ids(self._connection(), tried)}
        seen: set[str] = set()
        for job_id in tried:
            if job_id in existing:
                return DuplicateJobError(f"job {job_id!r} already exists")
            if job_id in seen:
                return DuplicateJobError(f"job {job_id!r} appears twice in the batch")
            seen.add(job_id)
        return DuplicateJobError("a job in the batch already exists")

    # -- the runner's exchange

    @operation(runner=True)
    def finish_and_claim(
        self,
        owner: str,
        outcomes: Sequence[lifecycle.Outcome],
        want: int,
        queues: Sequence[str] | None,
        lease_s: float,
    ) -> Exchange:
        # Replayed after a connection lost during COMMIT, outcomes already settled are fenced
        # out, and claims that did commit stay leased to `owner` until owned_jobs shows them.
        now = self.now()
        params = {
            "owner": owner,
            "now": now,
            "lease_until": now + round(lease_s * 1000),
            "queues": None if queues is None else self._list(queues),
            "want": want,
        }
        ahead = self._decide_ahead(outcomes, now) if self.settles_at_once else None
        if ahead is not None:
            found = self._settle_and_claim_at_once(owner, ahead, params)
            if found is not None:
                settled, rows, next_due, more = found
                claims = self._claims(rows)
                freed = self._freed(outcomes, settled)
                if want > len(claims) and more:
                    # Flow control may let more start (the same seam as below), in a
                    # transaction of its own after the settlements committed.
                    with self._transaction() as conn:
                        rest, next_due = self._claim(conn, {**params, "want": want - len(claims)})
                        claims += rest
                        if self._wakes(freed, claims):
                            self._wake(conn)
                elif self._wakes(freed, claims):
                    with self._transaction() as conn:
                        self._wake(conn)
                return Exchange(settled, claims, next_due if len(claims) < want else None)
        settled, claims, next_due = {}, [], None
        with self._transaction() as conn:
            if outcomes:
                settled = self._settle(conn, owner, outcomes, now)
            if want > 0:
                conn.execute(self.q["promote_due"], (now,))
                rows = conn.execute(self.q["claim"], params).fetchall()
                claims, next_due = self._claim(conn, params, rows)
            if self._wakes(self._freed(outcomes, settled), claims):
                self._wake(conn)
        return Exchange(settled, claims, next_due)

    def _claim(
        self, conn: Any, params: dict[str, Any], rows: Sequence[Any] = ()
    ) -> tuple[list[Claim], int | None]:
        """The claims of the rows `claim` took (none: claim under flow control instead), their
        attempts started; and, short of `want`, when the next delayed job falls due."""
        now, owner = params["now"], params["owner"]
        window_next: int | None = None
        # `claim` took nothing: nothing is due, or flow control applies.
        if not rows and self._flow_may_apply(conn, params):
            rows, window_next = self._claim_flow(conn, params)
        started = [
            {
                "id": r["id"],
                "attempt": r["attempts"],
                "token": r["token"],
                "owner": owner,
                "now": now,
            }
            for r in rows
        ]
        self._many(conn, "start_attempt", started)
        claims = self._claims(rows)
        next_due: int | None = None
        if len(claims) < params["want"]:
            next_due = self._value(conn, "next_due", (now,))
            if window_next is not None:
                next_due = window_next if next_due is None else min(next_due, window_next)
        return claims, next_due

    def _flow_may_apply(self, conn: Any, params: dict[str, Any]) -> bool:
        """Whether flow control may hold back a job that `claim`, in this transaction, just
        took nothing of (else the flow claim's statements are spared: an idle runner's poll
        finds nothing twice). SQLite's one writer sees what the claim saw."""
        return bool(self._value(conn, "flow_held_back", params))

    def _claims(self, rows: Sequence[Any]) -> list[Claim]:
        """Claimed rows as Claims, in claim order."""
        rows = sorted(rows, key=lambda r: (-r["priority"], r["run_at"], r["seq"]))
        return [
            Claim(
                r["id"],
                r["attempts"],
                r["token"],
                r["command"],
                r["cwd"],
                dict(self._from_json(r["env"])),
                r["timeout"],
                r["queue"],
                r["priority"],
                r["max_retries"],
                list(self._from_json(r["no_retry_exit_codes"])),
            )
            for r in rows
        ]

    # -- settling in one round trip (PostgreSQL)

    #: Whether the dialect overrides _settle_and_claim_at_once: SQLite has no round trip to save.
    settles_at_once: ClassVar[bool] = False

    def _decide_ahead(
        self, outcomes: Sequence[lifecycle.Outcome], now: int
    ) -> list[tuple[lifecycle.Outcome, lifecycle.Settlement]] | None:
        """How each outcome settles if its attempt is still ours, decided before anything is
        written, from the retry rules its claim returned; None when the plain path must settle
        them: an outcome without them, one that ends dead or cancelled (its dependants are
        cancelled), an abandoned attempt's (a lease to let go), or hooks to fire."""
        if not outcomes:
            return []  # nothing to decide, nor any configuration to read for it
        if any(o.fence is None or o.abandoned for o in outcomes):
            return None
        if outcomes and self._hooks(self._connection()):
            return None
        ours = {o.job_id: o.fence for o in outcomes if o.fence is not None}
        config = self._settle_config(self._connection())
        finished_at = self._finished_at(now)
        decided = lifecycle.settle_ours(outcomes, ours, config, random.random, finished_at)
        if len(decided) != len(outcomes) or any(s.state in (DEAD, CANCELLED) for _, s in decided):
            return None
        return sorted(decided, key=lambda d: d[0].job_id)  # one lock order for every settler

    def _settle_and_claim_at_once(
        self,
        owner: str,
        decided: Sequence[tuple[lifecycle.Outcome, lifecycle.Settlement]],
        params: dict[str, Any],
    ) -> tuple[dict[str, lifecycle.Settlement], list[Any], int | None, bool] | None:
        """Apply settlements decided ahead (each only if its attempt is still ours, with its
        history row and its dependants), and claim as `claim` does (or as flow_claim_counted,
        where the last flow claim found only concurrency limits), in one transaction; the
        settlements applied, the rows claimed, when the next delayed job falls due, and whether
        a claim under flow control may take more (the plain claim took nothing and flow
        control may have held a job back, as `_flow_may_apply`, seen by the claim; or the
        limits found differ from those counted). None: this dialect has no such path."""
        return None

    def _finished_at(self, now: int) -> Callable[[lifecycle.Outcome], int]:
        """When an outcome's attempt ended, on the store's clock."""
        mono = time.monotonic()

        def finished_at(outcome: lifecycle.Outcome) -> int:
            if outcome.ended_mono is None:
                return now
            return now - max(0, round((mono - outcome.ended_mono) * 1000))

        return finished_at

    def _claim_flow(self, conn: Any, params: dict[str, Any]) -> tuple[list[Any], int | None]:
        """Claim under flow control (SPEC 9.2): the claimed rows, and when a rate window next
        lets a job start (None: no rate holds one back).

        Limited queues' rows are locked first (PostgreSQL; SQLite's writer is alone), in name
        order, so claimers of a limited queue take turns and each counts what the previous one
        committed. With concurrency limits only and no job taking a lock, one statement then
        counts and claims. Otherwise a lock key is taken (an advisory lock on PostgreSQL,
        skipped when another claimer has it) before its holder is looked up in a new statement,
        and candidates of three kinds are chosen in claim order until `want`: a limited queue's
        within its room, one job per lock.
        """
        now, want = params["now"], params["want"]
        locking = {"queues": params["queues"], "names": self._list([])}
        limits = conn.execute(self.q["flow_lock_queues"], locking).fetchall()
        names = [r["name"] for r in limits]
        self._counted = self._counted_names(limits)
        if self._counted is not None:
            counted = {**params, "names": self._list(names)}
            taken = conn.execute(self.q["flow_claim_counted"], counted).fetchall()
            self._hold(taken, names)
            return taken, None
        room: dict[str, int] = {}
        windows: dict[str, tuple[int, int, list[int]]] = {}  # queue: (jobs, ms, starts)
        candidates: list[Any] = []
        running: dict[str, int] = {}
        if names:
            counts = conn.execute(self.q["flow_queues"], {"names": self._list(names)})
            running = {r["name"]: int(r["running"]) for r in counts.fetchall()}
        for r in limits:
            name, allowed = r["name"], want
            if r["concurrency"] is not None:
                allowed = min(allowed, r["concurrency"] - running.get(name, 0))
            if r["rate_jobs"] is not None:
                window = {"queue": name, "since": now - r["rate_ms"]}
                conn.execute(self.q["flow_prune_starts"], window)
                starts = [
                    int(s["started_at"]) for s in conn.execute(self.q["flow_window_starts"], window)
                ]
                windows[name] = (r["rate_jobs"], r["rate_ms"], starts)
                allowed = min(allowed, r["rate_jobs"] - len(starts))
            room[name] = max(0, allowed)
            if room[name]:
                # A few more than the room: some may share a lock with a job chosen first.
                found = {"now": now, "queue": name, "n": room[name] + FLOW_SLACK}
                candidates += conn.execute(self.q["flow_queue_candidates"], found).fetchall()
        others = {"now": now, "queues": params["queues"], "want": want}
        candidates += conn.execute(self.q["flow_lock_candidates"], others).fetchall()
        candidates += conn.execute(self.q["flow_free_candidates"], others).fetchall()
        candidates.sort(key=lambda r: (-r["priority"], r["run_at"], r["seq"]))
        chosen: list[int] = []
        keys: set[str] = set()
        for c in candidates:
            if len(chosen) == want:
                break
            queue, key = c["queue"], c["lock_key"]
            if room.get(queue, 1) <= 0 or key in keys:
                continue
            if key is not None and not self._take_lock(conn, key):
                continue
            if queue in room:
                room[queue] -= 1
            if key is not None:
                keys.add(key)
            chosen.append(c["seq"])
        if not chosen:
            rows: list[Any] = []
        else:
            claim = {**params, "seqs": self._list(chosen)}
            rows = conn.execute(self.q["flow_claim"], claim).fetchall()
        self._hold(rows, names)
        started = [{"queue": r["queue"], "now": now} for r in rows if r["queue"] in windows]
        self._many(conn, "flow_record_start", started)
        opens = [
            window_opens_at(starts + [now] * sum(1 for r in rows if r["queue"] == name), jobs, ms)
            for name, (jobs, ms, starts) in windows.items()
        ]
        return rows, min((at for at in opens if at is not None), default=None)

    @staticmethod
    def _counted_names(limits: Sequence[Any]) -> list[str] | None:
        """The limited queues among `flow_lock_queues` rows when one statement can count and
        claim them (concurrency limits only, no job with a lock due); None otherwise."""
        live = [
            r
            for r in limits
            if not r["paused"] and (r["concurrency"] is not None or r["rate_jobs"] is not None)
        ]
        if not live or any(r["rate_jobs"] is not None or r["locks_due"] for r in live):
            return None
        return [r["name"] for r in live]

    def _hold(self, rows: Sequence[Any], limited: Sequence[str]) -> None:
        """Note the claims that take a limited queue's slot or a lock, to know when settling
        them frees one (see _wakes)."""
        for r in rows:
            queue = r["queue"] if r["queue"] in limited else None
            if queue is not None or r["lock_key"] is not None:
                self._held[r["id"]] = (queue, r["lock_key"])

    def _freed(
        self, outcomes: Sequence[lifecycle.Outcome], settled: dict[str, lifecycle.Settlement]
    ) -> tuple[dict[str, int], set[str]]:
        """The limited queues' slots (queue: how many) and the locks that the settled jobs
        freed; they are no longer held."""
        slots: dict[str, int] = {}
        keys: set[str] = set()
        for outcome in outcomes:
            queue, key = self._held.pop(outcome.job_id, (None, None))
            if outcome.job_id not in settled:
                continue  # cancelled or recovered meanwhile: that change freed it, and woke
            if queue is not None:
                slots[queue] = slots.get(queue, 0) + 1
            if key is not None:
                keys.add(key)
        return slots, keys

    def _wakes(self, freed: tuple[dict[str, int], set[str]], claims: Sequence[Claim]) -> bool:
        """Whether to wake the other runners: the settlements `freed` a limited queue's slot or
        a lock that this exchange's own `claims` did not take again, and a runner held back by
        that limit would otherwise wait for its fallback poll. A slot taken again needs no
        wake, so a limited queue with a backlog sends none."""
        slots, keys = dict(freed[0]), set(freed[1])
        if not slots and not keys:
            return False
        for claim in claims:  # those that took a slot or a lock were just noted by _hold
            queue, key = self._held.get(claim.id, (None, None))
            if queue is not None and queue in slots:
                slots[queue] -= 1
            keys.discard(key)
        return bool(keys) or any(n > 0 for n in slots.values())

    def _take_lock(self, conn: Any, key: str) -> bool:
        """Whether this claim may start a job holding `key`: it has the key (PostgreSQL: an
        advisory lock until commit) and no running job holds it."""
        if not self._value(conn, "flow_try_lock", {"key": key}):
            return False
        held = conn.execute(self.q["flow_held_locks"], {"keys": self._list([key])}).fetchone()
        return held is None

    def _settle(
        self, conn: Any, owner: str, outcomes: Sequence[lifecycle.Outcome], now: int
    ) -> dict[str, lifecycle.Settlement]:
        """Apply the outcomes whose attempt is still ours; how each was settled.

        A few statements whatever the number of outcomes: one locking read of the attempts
        still ours, the settlements and outputs in batches, one update of the dependants.
        """
        ids = self._list([outcome.job_id for outcome in outcomes])
        rows = conn.execute(self.q["fenced_jobs"], (ids, owner)).fetchall()
        ours = {
            r["id"]: lifecycle.Fence(
                r["attempts"],
                r["token"],
                r["max_retries"],
                list(self._from_json(r["no_retry_exit_codes"])),
            )
            for r in rows
        }
        finished_at = self._finished_at(now)
        config = self._settle_config(conn)
        decided = lifecycle.settle_ours(
            [o for o in outcomes if not o.abandoned], ours, config, random.random, finished_at
        )
        self._let_go(conn, owner, [(o.job_id, o.token) for o in outcomes if o.abandoned])
        self._many(
            conn,
            "settle_job",
            [lifecycle.settle_params(o, s, owner, now, finished_at(o)) for o, s in decided],
        )
        self._many(
            conn,
            "finish_attempt",
            [
                {
                    "id": o.job_id,
                    "token": o.token,
                    "finished_at": finished_at(o),
                    "exit_code": o.exit_code,
                    "error": s.last_error,
                    "duration_ms": o.duration_ms,
                    "output": o.output,
                    "dropped": None if o.output is None else o.output_dropped,
                }
                for o, s in decided
            ],
        )
        cascaded: list[Any] = []
        for outcome, settlement in decided:
            if settlement.state in (DEAD, CANCELLED):
                cascaded += self._cancel_dependants(conn, outcome.job_id, settlement.state, now)
        if decided and self._hooks(conn):
            self._fire_settled(conn, decided, cascaded, now)
        with_dependants = {r["id"] for r in rows if r["has_dependants"]}
        completed = [
            o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants
        ]
        if (
            completed
            and conn.execute(self.q["unblock_dependants"], {"ids": self._list(completed)}).rowcount
        ):
            self._wake(conn)
        return {outcome.job_id: settlement for outcome, settlement in decided}

    def _let_go(self, conn: Any, owner: str, attempts: Sequence[tuple[str, int]]) -> None:
        """The processes of these cancelled attempts (job id, token) under `owner` are gone:
        their leases, holding a lock, a queue's slot and their job, are let go."""
        freed = 0
        for job_id, token in attempts:
            params = {"id": job_id, "owner": owner, "token": token}
            freed += conn.execute(self.q["let_go"], params).rowcount
        if freed:
            self._wake(conn)

    def _cancel_dependants(self, conn: Any, job_id: str, state: str, now: int) -> list[Any]:
        """A dependency that ends dead or cancelled cancels its dependants (see _cascade)."""
        return self._cascade(conn, [job_id], state, now)

    def _cascade(self, conn: Any, roots: Iterable[str], state: str, now: int) -> list[Any]:
        """Cancel the dependants of jobs that ended `state` (dead or cancelled), and theirs in
        turn, a level of dependants a statement, through the jobs cancelled only: each job and
        edge is read once, however many of the roots share dependants (a bulk cancel's batch).
        Each dependant names as its reason the root that reached it (the smallest, when several
        did at once). The rows of the jobs cancelled (read whole: SQLite applies an UPDATE ...
        RETURNING as its rows are fetched)."""
        reached = {job_id: job_id for job_id in roots}
        cascaded: list[Any] = []
        while reached:
            doomed: dict[str, str] = {}
            edges = conn.execute(self.q["dependants_of"], (self._list(list(reached)),))
            for edge in edges.fetchall():
                root, dependant = reached[edge["dep_id"]], edge["job_id"]
                doomed[dependant] = min(root, doomed.get(dependant, root))
            if not doomed:
                break
            params = {"doomed": self._json(doomed), "state": state, "now": now}
            rows = conn.execute(self.q["cancel_dependants"], params).fetchall()
            cascaded += rows
            reached = {row["id"]: doomed[row["id"]] for row in rows}
        return cascaded

    @operation()
    def release(self, owner: str, job_id: str, token: int) -> bool:
        self._held.pop(job_id, None)  # given back: the wake below tells the other runners
        with self._transaction() as conn:
            changed = conn.execute(
                self.q["release_job"],
                {"now": self.now(), "id": job_id, "owner": owner, "token": token},
            ).rowcount
            if changed:
                conn.execute(self.q["drop_attempt"], {"id": job_id, "token": token})
                self._wake(conn)
        return bool(changed == 1)

    @operation(runner=True)
    def save_output(
        self, owner: str, job_id: str, token: int, data: bytes, dropped: int = 0
    ) -> bool:
        params = {"id": job_id, "owner": owner, "token": token, "data": data}
        with self._transaction() as conn:
            changed = conn.execute(self.q["save_live_output"], {**params, "dropped": dropped})
        return bool(changed.rowcount == 1)

    @operation(runner=True)
    def owned_jobs(self, owner: str) -> dict[str, int]:
        rows = self._connection().execute(self.q["owned_jobs"], {"owner": owner})
        return {r["id"]: r["attempts"] for r in rows}

    # -- reading

    @operation()
    def get(self, job_id: str) -> Job | None:
        row = self._connection().execute(self.q["get_job"], (job_id,)).fetchone()
        return None if row is None else self._job(row)

    @operation()
    def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        # U+10FFFF sorts after every character an id may hold, byte-wise in UTF-8 too.
        bounds = (prefix, prefix + "\U0010ffff", limit)
        return [row["id"] for row in self._connection().execute(self.q["ids_from"], bounds)]

    @operation()
    def list_jobs(
        self,
        states: Sequence[str] | None,
        queues: Sequence[str] | None,
        limit: int | None,
        before: int | None,
    ) -> Page:
        # A lone name is a Sequence[str] too, of letters: take it as the one name it is.
        states = [states] if isinstance(states, str) else states
        queues = [queues] if isinstance(queues, str) else queues
        params: dict[str, Any] = {
            "limit": FAR_FUTURE if limit is None else limit,
            "before": FAR_FUTURE if before is None else before,
        }
        conn = self._connection()
        any_: list[str | None] = [None]
        # Several states or queues (`list --state a --state b`, the union): one walk of an index
        # per pair, merged newest first. One query over all of them could walk no index in
        # `seq` order, and would read every matching job to sort them.
        walks = [
            conn.execute(
                self.q[LIST_QUERIES[state is not None, queue is not None]],
                {**params, "state": state, "queue": queue},
            ).fetchall()
            for state in dict.fromkeys(states or any_)
            for queue in dict.fromkeys(queues or any_)
        ]
        merged = heapq.merge(*walks, key=lambda row: int(row["seq"]), reverse=True)
        rows: list[Any] = []
        for row in merged:
            if len(rows) == params["limit"]:
                break
            # a job that changed state between two walks is seen twice, or not at all
            if not rows or rows[-1]["seq"] != row["seq"]:
                rows.append(row)
        more = limit is not None and limit > 0 and len(rows) == limit
        return Page([self._job(r) for r in rows], rows[-1]["seq"] if more else None)

    @operation()
    def output(self, job_id: str, nth: int | None = None) -> Output | None:
        conn = self._connection()
        if nth is None:
            row = conn.execute(self.q["last_output"], (job_id,)).fetchone()
        else:
            row = conn.execute(self.q["nth_output"], {"id": job_id, "n": nth}).fetchone()
        if row is None:
            return None
        data = b"" if row["output"] is None else bytes(row["output"])
        return Output(row["attempt"], data, int(row["output_dropped"]))

    @operation()
    def history(self, job_id: str) -> list[Attempt]:
        return [
            Attempt(
                attempt=row["attempt"],
                runner=row["runner"],
                host=row["host"],
                started_at_ms=row["started_at"],
                finished_at_ms=row["finished_at"],
                exit_code=row["exit_code"],
                error=row["error"],
                duration_ms=row["duration_ms"],
                token=row["token"],
            )
            for row in self._connection().execute(self.q["history"], (job_id,))
        ]

    @operation()
    def counts(self) -> dict[str, dict[str, int]]:
        return self._counters("n")

    def _counters(self, column: str) -> dict[str, dict[str, int]]:
        """`column` ("n" or "attempts") of the counters per queue and state with jobs."""
        rows = self._connection().execute(self.q["counts"]).fetchall()
        deltas = sum(int(row["deltas"]) for row in rows)
        if deltas > self.compact_after:
            self._compact_counts(deltas)
        result: dict[str, dict[str, int]] = {}
        for row in rows:
            if int(row["n"]) > 0:
                result.setdefault(row["queue"], {})[row["state"]] = int(row[column])
        return result

    def _compact_counts(self, deltas: int | None = None) -> None:
        """Fold the counters' deltas (`deltas` of them, None: not counted yet) into their base
        if more than `compact_after` piled up; a dialect without deltas has nothing to do
        (SQLite, with one writer, updates its counters in place)."""

    @operation()
    def done_since(self, since_ms: int) -> int:
        return int(self._value(self._connection(), "done_since", (since_ms,)))

    @operation()
    def finished_per_minute(self, since_ms: int) -> dict[int, dict[str, int]]:
        result: dict[int, dict[str, int]] = {}
        rows = self._connection().execute(self.q["finished_per_minute"], {"since": since_ms})
        for row in rows:
            result.setdefault(int(row["minute"]), {})[row["state"]] = int(row["n"])
        return result

    @operation()
    def attempts_by_queue(self) -> dict[str, dict[str, int]]:
        return self._counters("attempts")

    @operation()
    def recent_durations(self, since_ms: int) -> dict[str, list[Bucket]]:
        result: dict[str, list[Bucket]] = {}
        rows = self._connection().execute(self.q["recent_durations"], {"since": since_ms})
        for row in rows:
            bound = int(row["bound_ms"])
            total = int(row["total_ms"])
            bucket = Bucket(None if bound == OVER_ALL_BOUNDS else bound, int(row["n"]), total)
            result.setdefault(row["queue"], []).append(bucket)
        return result

    @operation()
    def totals(self) -> Totals:
        rows = self._connection().execute(self.q["counters"]).fetchall()
        deltas = sum(int(row["deltas"]) for row in rows)
        if deltas > self.compact_after:
            self._compact_counts(deltas)
        totals = Totals()
        for row in rows:
            queue, state, n = row["queue"], row["state"], int(row["n"])
            if row["what"] == "enqueued":
                totals.enqueued[queue] = totals.enqueued.get(queue, 0) + n
            if state in FINISHED_STATES:
                states = totals.finished.setdefault(queue, {})
                states[state] = states.get(state, 0) + n
            if row["what"] == "attempt":
                outcomes = totals.attempts.setdefault(queue, {})
                outcomes[row["outcome"]] = outcomes.get(row["outcome"], 0) + n
                bound = int(row["bound_ms"])
                bucket = Bucket(None if bound < 0 else bound, n, int(row["total_ms"]))
                totals.durations.setdefault(queue, []).append(bucket)
        return totals

    @operation()
    def oldest_due(self, now_ms: int) -> dict[str, int]:
        rows = self._connection().execute(self.q["oldest_due"], {"now": now_ms})
        return {row["queue"]: int(row["run_at"]) for row in rows}

    # -- changing jobs

    @operation(replayable=False)
    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        now = self.now()
        with self._transaction() as conn:
            locked = conn.execute(self.q["locked_jobs"], (self._list(job_ids),)).fetchall()
            rows = {row["id"]: row for row in locked}
            for job_id in job_ids:  # all or nothing
                if job_id not in rows:
                    raise NotFoundError(f"no job {job_id!r}")
                _check_cancellable(job_id, rows[job_id]["state"])
            cancelled, _ = self._cancel_rows(conn, locked, now)
        return [self._job(rows[job_id]) for job_id in dict.fromkeys(job_ids) if job_id in cancelled]

    def cancel_all(
        self,
        queue: str | None = None,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        return self._bulk(sorted(CANCELLABLE_STATES), queue, batch, self._cancel_batch, progress)

    @operation()
    def _cancel_batch(
        self, state: str, queue: str | None, after: int, upto: int, batch: int
    ) -> tuple[int, int, int]:
        """One batch of cancel_all, in a transaction of its own (see _bulk)."""
        now = self.now()
        with self._transaction() as conn:
            ids, after = self._bulk_ids(conn, state, queue, after, upto, batch)
            if not ids:
                return 0, after, 0
            locked = conn.execute(self.q["locked_jobs"], (self._list(ids),)).fetchall()
            rows = [row for row in locked if row["state"] in CANCELLABLE_STATES]
            cancelled, cascaded = self._cancel_rows(conn, rows, now)
        return len(ids), after, len(cancelled) + cascaded

    def _cancel_rows(self, conn: Any, rows: Sequence[Any], now: int) -> tuple[set[str], int]:
        """Cancel the jobs of these `locked_jobs` rows (in a state that may be cancelled), then
        their dependants, and fire the hooks; the ids cancelled, and how many dependants were
        cancelled with them. Jobs that are not running are cancelled in one statement."""
        waiting = [row["id"] for row in rows if row["state"] != PROCESSING]
        cancelled: set[str] = set()
        if waiting:
            params = {"ids": self._list(waiting), "now": now}
            cancelled.update(r["id"] for r in conn.execute(self.q["cancel_waiting"], params))
        for row in rows:  # running ones: a few at most, one per busy worker
            job_id = row["id"]
            if row["state"] != PROCESSING:
                continue
            if conn.execute(self.q["cancel_job"], {"id": job_id, "now": now}).rowcount:
                conn.execute(self.q["close_attempt"], {"id": job_id, "now": now})
                cancelled.add(job_id)
        if not cancelled:
            return cancelled, 0
        cascaded = self._cascade(conn, cancelled, CANCELLED, now)
        if self._hooks(conn):
            self._fire_cancelled(conn, [r for r in rows if r["id"] in cancelled], cascaded, now)
        self._wake(conn)  # runners kill what was cancelled
        return cancelled, len(cascaded)

    @operation(replayable=False)
    def requeue(
        self,
        job_ids: Sequence[str] | None,
        states: Sequence[str],
        queue: str | None = None,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        if job_ids is None:
            done: list[str] = []

            def step(
                state: str, queue: str | None, after: int, upto: int, batch: int
            ) -> tuple[int, int, int]:
                found, after, requeued = self._requeue_batch(
                    states, state, queue, after, upto, batch
                )
                done.extend(requeued)
                return found, after, len(requeued)

            self._bulk(states, queue, batch, step, progress)
            return done
        with self._transaction() as conn:
            found = {job.id: job for job in self._jobs_by_ids(conn, job_ids)}
            for job_id in job_ids:
                if job_id not in found:
                    raise NotFoundError(f"no job {job_id!r}")
                if found[job_id].state not in states:
                    raise WrongStateError(
                        f"job {job_id!r} is {found[job_id].state}, not {' or '.join(states)}"
                    )
            return self._requeue_jobs(conn, [found[i] for i in dict.fromkeys(job_ids)], states)

    @operation(replayable=False)
    def _requeue_batch(
        self,
        states: Sequence[str],
        state: str,
        queue: str | None,
        after: int,
        upto: int,
        batch: int,
    ) -> tuple[int, int, list[str]]:
        """One batch of a bulk requeue, in a transaction of its own (see _bulk)."""
        with self._transaction() as conn:
            ids, after = self._bulk_ids(conn, state, queue, after, upto, batch)
            if not ids:
                return 0, after, []
            jobs = [job for job in self._jobs_by_ids(conn, ids) if job.state in states]
            return len(ids), after, self._requeue_jobs(conn, jobs, states, named=False)

    def _requeue_jobs(
        self, conn: Any, jobs: Sequence[Job], states: Sequence[str], named: bool = True
    ) -> list[str]:
        """Requeue these jobs (read in this transaction) in one statement; the ids requeued, in
        their order. Named ones must all be (each was in `states`): one requeued by someone else
        since is refused, as is one whose unique_key an active job holds or with a dependency
        dead or cancelled (not run again with it). A bulk change leaves those dead instead (the
        first of two dead jobs of one key runs again), and goes on."""
        stuck: set[str] = set()
        waiting = self._requeue_waiting(conn, jobs, None if named else stuck)
        if stuck:  # left dead, so are the jobs of this batch that depend on them
            kept = [job for job in jobs if job.id not in stuck]
            return self._requeue_jobs(conn, kept, states, named) if kept else []
        params = {"now": self.now(), "states": self._list(states)}
        wanted = {job.id: waiting.get(job.id, 0) for job in jobs}
        conn.execute(self.q["savepoint"])
        try:
            rows = conn.execute(self.q["requeue"], {**params, "jobs": self._json(wanted)})
            changed = {row["id"] for row in rows.fetchall()}
        except self.unique_violation:
            conn.execute(self.q["rollback_savepoint"])
            refused: set[str] = set()
            for job_id, count in wanted.items():  # which ones, one after the other
                conn.execute(self.q["savepoint"])
                try:
                    conn.execute(self.q["requeue"], {**params, "jobs": self._json({job_id: count})})
                except self.unique_violation:
                    conn.execute(self.q["rollback_savepoint"])
                    if named:
                        raise ConflictError(
                            f"job {job_id!r} cannot run again: an active job holds its unique_key"
                        ) from None
                    refused.add(job_id)
                conn.execute(self.q["release_savepoint"])
            conn.execute(self.q["rollback_savepoint"])  # the rest again, counted without those
            conn.execute(self.q["release_savepoint"])
            if not refused:
                raise  # refused as a whole, yet each alone was not: cannot happen with one writer
            kept = [job for job in jobs if job.id not in refused]
            return self._requeue_jobs(conn, kept, states, named) if kept else []
        conn.execute(self.q["release_savepoint"])
        if named:
            for job in jobs:  # requeued by someone else since we looked
                if job.id not in changed:
                    raise WrongStateError(f"job {job.id!r} is no longer {' or '.join(states)}")
        if changed:
            self._wake(conn)
        return [job.id for job in jobs if job.id in changed]

    def _requeue_waiting(
        self, conn: Any, jobs: Sequence[Job], stuck: set[str] | None = None
    ) -> dict[str, int]:
        """How many dependencies each job run again waits on: those not completed, counted
        afresh (what was counted when it was cancelled may be stale), the jobs run again with
        it counting as pending. Only the dependencies its edges still link it to count: one
        deleted since (retention, purge) took its edges with it and waits on nothing, even if
        a new job has its id now. One dead or cancelled would keep the job waiting forever, so
        the requeue is refused (with `stuck`, a bulk change's, the job is added to it instead).
        The dependencies are read as enqueue reads them (locked on PostgreSQL), so none can
        complete unseen before this commits."""
        ids = [job.id for job in jobs if job.depends_on]
        if not ids:
            return {}
        again = {job.id for job in jobs}
        edges = conn.execute(self.q["locked_dependencies_of"], (self._list(ids),)).fetchall()
        waiting: dict[str, int] = {}
        for edge in sorted(edges, key=lambda e: (e["job_id"], e["dep_id"])):
            job_id, dep = edge["job_id"], edge["dep_id"]
            state = PENDING if dep in again else edge["state"]
            if state in (DEAD, CANCELLED) and stuck is not None:
                stuck.add(job_id)
            elif state in (DEAD, CANCELLED):
                raise WrongStateError(
                    f"job {job_id!r} depends on {dep!r}, which is {state}: requeue {dep!r} too"
                )
            waiting[job_id] = waiting.get(job_id, 0) + (state != COMPLETED)
        return waiting

    @operation()
    def dependencies(self, job_id: str) -> dict[str, str]:
        rows = self._connection().execute(self.q["dependencies_of"], (self._list([job_id]),))
        return {row["dep_id"]: row["state"] for row in rows}

    def _bulk(
        self,
        states: Sequence[str],
        queue: str | None,
        batch: int,
        step: Callable[[str, str | None, int, int, int], tuple[int, int, int]],
        progress: Callable[[int], None] | None,
    ) -> int:
        """Change every job in `states` (of `queue`, None: of every queue) that exists now, a
        batch of at most `batch` at a time, each batch a transaction of its own: other clients'
        enqueues and claims go on between them. `step(state, queue, after, upto, batch)` changes
        the next batch of jobs in `state` after the cursor `after` (a seq) up to `upto`, and says
        how many it found, the new cursor and how many jobs it changed; `progress` gets the
        running total after each batch. A job can move between the states meanwhile (a runner
        claims or settles it) behind a cursor: the walks start again until one finds nothing.
        With one state there is no such move: a job found in it again was changed by this walk
        and came back (retried, run and dead again), so it is not changed twice. How many jobs
        were changed."""
        upto = self._newest_seq()
        done = 0
        while True:
            found_any = False
            for state in states:
                after = 0
                while True:
                    found, after, changed = step(state, queue, after, upto, batch)
                    found_any = found_any or found > 0
                    done += changed
                    if changed and progress is not None:
                        progress(done)
                    if found < batch:
                        break
            if not found_any or len(states) == 1:
                return done

    @operation()
    def _newest_seq(self) -> int:
        return int(self._value(self._connection(), "newest_seq"))

    def _bulk_ids(
        self, conn: Any, state: str, queue: str | None, after: int, upto: int, batch: int
    ) -> tuple[list[str], int]:
        """The ids of the next batch of a bulk change (see _bulk), and the cursor after it."""
        params = {"state": state, "queue": queue, "after": after, "upto": upto, "batch": batch}
        name = "bulk_batch" if queue is None else "bulk_batch_of_queue"
        rows = conn.execute(self.q[name], params).fetchall()
        return [row["id"] for row in rows], int(rows[-1]["seq"]) if rows else after

    def purge(
        self,
        states: Sequence[str],
        finished_before_ms: int,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        done, since = 0, 0
        while True:
            deleted, since = self._purge_batch(states, finished_before_ms, since, batch)
            done += deleted
            if deleted and progress is not None:
                progress(done)
            if deleted < batch:
                return done

    @operation()
    def _purge_batch(
        self, states: Sequence[str], before: int, since: int, batch: int
    ) -> tuple[int, int]:
        return self._delete_finished(states, before, since, batch)

    @operation(runner=True)
    def expire(self, states: Sequence[str], finished_before_ms: int, batch: int) -> int:
        return self._delete_finished(states, finished_before_ms, 0, batch)[0]

    def _delete_finished(
        self, states: Sequence[str], before: int, since: int, batch: int
    ) -> tuple[int, int]:
        """Delete the oldest `batch` jobs in `states` that finished in [since, before), in a
        transaction of their own; how many, and when the last of them finished (where the next
        batch starts looking: the jobs of other states older than that are not read again)."""
        params = {"states": self._list(states), "before": before, "since": since, "batch": batch}
        with self._transaction() as conn:
            rows = conn.execute(self.q["expire_finished"], params).fetchall()
        return len(rows), max((int(r["finished_at"]) for r in rows), default=since)

    @operation(runner=True)
    def forget_finished_minutes(self, before_ms: int) -> None:
        with self._transaction() as conn:
            conn.execute(self.q["forget_finished_minutes"], {"since": before_ms})

    # -- runners and leases

    @operation(runner=True)
    def register_runner(self, runner: Runner) -> None:
        now = self.now()
        runner.started_at_ms = runner.heartbeat_at_ms = now
        with self._transaction() as conn:
            conn.execute(
                self.q["register_runner"],
                (
                    runner.id,
                    runner.host,
                    runner.pid,
                    runner.pid_started,
                    runner.workers,
                    None if runner.queues is None else self._json(list(runner.queues)),
                    now,
                    now,
                ),
            )
            # The other runners learn of it at once: on this host they watch its process, and
            # recover its jobs within a second should it die young.
            self._wake(conn)

    @operation(runner=True)
    def heartbeat(self, owner: str, lease_s: float) -> bool | None:
        now = self.now()
        with self._transaction() as conn:
            self._refuse_newer_schema(conn)
            row = conn.execute(self.q["beat_runner"], (now, owner)).fetchone()
            until = now + round(lease_s * 1000)
            conn.execute(self.q["renew_leases"], (until, owner))
            conn.execute(self.q["renew_dying"], (until, owner))
        return None if row is None else bool(row["stop_requested"])

    @operation()
    def unregister_runner(self, owner: str) -> None:
        with self._transaction() as conn:
            conn.execute(self.q["unregister_runner"], (owner,))

    @operation()
    def runners(self) -> list[Runner]:
        conn = self._connection()
        running: dict[str, list[str]] = {}
        for row in conn.execute(self.q["running_jobs"]):
            running.setdefault(row["lease_owner"], []).append(row["id"])
        return [
            _runner(
                r,
                None if r["queues"] is None else self._from_json(r["queues"]),
                running.get(r["id"], []),
            )
            for r in conn.execute(self.q["runners"]).fetchall()
        ]

    @operation(runner=True)
    def housekeeping(self, owner: str, queues: Sequence[str] | None) -> Housekeeping:
        params = {
            "owner": owner,
            "now": self.now(),
            "queues": None if queues is None else self._list(queues),
            "deltas": self.compact_after + 1,
        }
        row = self._connection().execute(self.q["housekeeping"], params).fetchone()
        if int(row["deltas"]) > self.compact_after:
            self._compact_counts(int(row["deltas"]))
        config = dict(DEFAULTS)
        for key, value in (self._json_value(row["config"]) or {}).items():
            if key in config:
                config[key] = value
        next_schedule = row["next_schedule"]
        return Housekeeping(
            owned={job_id: attempt for job_id, attempt in self._json_value(row["owned"]) or []},
            runners=[_runner(r, r["queues"], []) for r in self._json_value(row["runners"]) or []],
            expired=bool(row["expired"]),
            next_schedule_ms=None if next_schedule is None else int(next_schedule),
            startable=bool(row["startable"]),
            config=config,
        )

    @operation()
    def request_stop(self) -> int:
        with self._transaction() as conn:
            count = int(conn.execute(self.q["request_stop"]).rowcount)
            self._wake(conn)
        return count

    @operation()
    def withdraw_stop(self) -> int:
        with self._transaction() as conn:
            count = int(conn.execute(self.q["withdraw_stop"]).rowcount)
            self._wake(conn)
        return count

    @operation(runner=True)
    def reap(self, dead_owners: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
        now = self.now()
        expired = {"now": now, "exclude": self._list(exclude)}
        dying = {**expired, "owners": self._list(dead_owners)}
        if (
            not dead_owners
            and not self._connection().execute(self.q["expired_jobs"], expired).fetchone()
            and not self._connection().execute(self.q["expired_dying"], dying).fetchone()
        ):
            return []
        recovered: list[str] = []
        with self._transaction() as conn:
            # Cancelled attempts that nobody is left to report gone (their watchdog kills them).
            for row in conn.execute(self.q["expired_dying"], dying).fetchall():
                self._let_go(conn, row["lease_owner"], [(row["id"], row["token"])])
            victims: dict[tuple[str, int, int, str], None] = {}
            for owner in dead_owners:
                for row in conn.execute(self.q["jobs_of_owner"], (owner,)).fetchall():
                    victims[(row["id"], row["attempts"], row["token"], owner)] = None
                conn.execute(self.q["unregister_runner"], (owner,))
            for row in conn.execute(self.q["expired_jobs"], expired).fetchall():
                victims[(row["id"], row["attempts"], row["token"], row["lease_owner"])] = None
            for job_id, attempt, token, owner in victims:
                lost = lifecycle.Outcome(job_id, attempt, None, "worker lost", None, token=token)
                recovered += self._settle(conn, owner, [lost], now)
            if recovered:
                self._wake(conn)
        return recovered

    # -- configuration and queues

    @operation()
    def config(self) -> dict[str, float]:
        return self._config(self._connection())

    @operation()
    def set_config(self, key: str, value: float) -> None:
        self._config_cache = None
        with self._transaction() as conn:
            conn.execute(self.q["config_set"], (key, self._json(value)))
            self._wake(conn)

    @operation()
    def queues(self) -> dict[str, bool]:
        rows = self._connection().execute(self.q["queues"])
        return {row["name"]: bool(row["paused"]) for row in rows}

    @operation()
    def set_paused(self, queue: str, paused: bool) -> None:
        with self._transaction() as conn:
            conn.execute(self.q["set_paused"], (queue, paused))
            self._wake(conn)

    # -- flow control (SPEC 9.2)

    @operation()
    def queue_settings(self) -> dict[str, QueueSettings]:
        return {
            r["name"]: QueueSettings(
                paused=bool(r["paused"]),
                concurrency=r["concurrency"],
                rate_jobs=r["rate_jobs"],
                rate_ms=r["rate_ms"],
                running=int(r["running"]),
            )
            for r in self._connection().execute(self.q["flow_settings"]).fetchall()
        }

    @operation()
    def set_limits(
        self,
        queue: str,
        concurrency: int | None,
        rate: tuple[int, int] | None,
        *,
        keep_concurrency: bool = False,
        keep_rate: bool = False,
    ) -> None:
        rate_jobs, rate_ms = rate or (None, None)
        with self._transaction() as conn:
            conn.execute(
                self.q["flow_set_limits"],
                {
                    "name": queue,
                    "concurrency": concurrency,
                    "rate_jobs": rate_jobs,
                    "rate_ms": rate_ms,
                    "keep_concurrency": keep_concurrency,
                    "keep_rate": keep_rate,
                },
            )
            if rate is None and not keep_rate:
                conn.execute(self.q["flow_forget_starts"], {"queue": queue})
            self._wake(conn)  # a raised limit may let waiting jobs start

    @operation()
    def window_starts(self, queue: str, since_ms: int) -> list[int]:
        rows = self._connection().execute(
            self.q["flow_window_starts"], {"queue": queue, "since": since_ms}
        )
        return [int(r["started_at"]) for r in rows]

    @operation()
    def lock_holder(self, key: str) -> str | None:
        value = self._value(self._connection(), "flow_lock_holder", {"key": key})
        return None if value is None else str(value)

    # -- hooks (SPEC 9.9): fired in the transaction of the change they follow

    def _hooks(self, conn: Any) -> list[Hook]:
        """The hooks, read at most every CONFIG_TTL_S: with none, settling costs no query."""
        cached = self._hooks_cache
        if cached is None or time.monotonic() - cached[0] > CONFIG_TTL_S:
            hooks = [self._hook(r) for r in conn.execute(self.q["hooks"]).fetchall()]
            cached = self._hooks_cache = (time.monotonic(), hooks)
        return cached[1]

    def _hook(self, row: Any) -> Hook:
        return Hook(
            name=row["name"],
            events=list(self._from_json(row["events"])),
            queue=row["queue"],
            job=dict(self._from_json(row["job"])),
            created_at_ms=row["created_at"],
        )

    def _fire_settled(
        self,
        conn: Any,
        decided: Sequence[tuple[lifecycle.Outcome, lifecycle.Settlement]],
        cascaded: Sequence[Any],
        now: int,
    ) -> None:
        """The hooks on the settled jobs' new states, and on `cancelled` for their dependants
        cancelled by the cascade."""
        ids = self._list([outcome.job_id for outcome, _ in decided])
        subjects = {r["id"]: r for r in conn.execute(self.q["hook_subjects"], (ids,)).fetchall()}
        events = [
            Event(
                o.job_id, subjects[o.job_id]["queue"], s.state, o.attempt, o.exit_code, s.last_error
            )
            for o, s in decided
            if subjects[o.job_id]["made_by"] is None
        ]
        self._fire_hooks(conn, [*events, *self._cascade_events(cascaded)], now)

    def _fire_cancelled(
        self, conn: Any, rows: Sequence[Any], cascaded: Sequence[Any], now: int
    ) -> None:
        """The hooks on `cancelled` for the jobs of these rows (as they were) and the dependants
        cancelled with them."""
        events = [
            Event(r["id"], r["queue"], CANCELLED, r["attempts"], r["exit_code"], "cancelled")
            for r in rows
            if r["made_by"] is None
        ]
        self._fire_hooks(conn, [*events, *self._cascade_events(cascaded)], now)

    @staticmethod
    def _cascade_events(rows: Sequence[Any]) -> list[Event]:
        return [
            Event(r["id"], r["queue"], CANCELLED, r["attempts"], r["exit_code"], r["last_error"])
            for r in rows
            if r["made_by"] is None
        ]

    def _fire_hooks(self, conn: Any, events: Sequence[Event], now: int) -> None:
        """Enqueue the hook jobs of these events, in the caller's transaction."""
        rows = []
        default_retries = int(self._settle_config(conn)["max_retries"])
        for event in events:
            for hook in self._hooks(conn):
                if event.event not in hook.events or hook.queue not in (None, event.queue):
                    continue
                try:
                    job = hook_job(hook.job, event)
                except QueuectlError:
                    continue  # a template this version no longer accepts must not stop settling
                row = self._insert_row(job, _new_id(), now, default_retries, 0, None)
                rows.append((*row, made_by(hook.name, event)))
        if rows:
            self._many(conn, "insert_hook_job", rows)
            self._count_inserted_ids(conn, [row[0] for row in rows])
            self._wake(conn)

    @operation()
    def add_hook(self, hook: Hook) -> None:
        self._hooks_cache = None
        with self._transaction() as conn:
            conn.execute(
                self.q["upsert_hook"],
                {
                    "name": hook.name,
                    "events": self._json(hook.events),
                    "queue": hook.queue,
                    "job": self._json(hook.job),
                    "now": hook.created_at_ms,
                },
            )

    @operation()
    def remove_hook(self, name: str) -> bool:
        self._hooks_cache = None
        with self._transaction() as conn:
            return bool(conn.execute(self.q["delete_hook"], (name,)).rowcount == 1)

    @operation()
    def hooks(self) -> list[Hook]:
        return [self._hook(r) for r in self._connection().execute(self.q["hooks"]).fetchall()]

    # -- reset and recent counts (SPEC 9.10)

    @operation(replayable=False)
    def reset(self, everything: bool) -> dict[str, int]:
        with self._transaction() as conn:
            # Checked inside the write: a runner registering meanwhile waits, then finds none.
            if int(self._value(conn, "live_runners")):
                raise ConflictError(
                    "a runner is up; stop it first with `queuectl worker stop`, then reset"
                )
            totals = conn.execute(self.q["job_totals"]).fetchone()
            deleted = {"jobs": int(totals["jobs"]), "attempts": int(totals["attempts"])}
            # History and edges first: the per-job trigger then finds nothing left to delete.
            for name in (
                "reset_attempts",
                "reset_deps",
                "reset_jobs",
                "reset_counts",
                "reset_finished_minutes",
            ):
                conn.execute(self.q[name])
            if everything:
                for what in ("schedules", "hooks", "queues", "config"):
                    deleted[what] = int(conn.execute(self.q[f"reset_{what}"]).rowcount)
                conn.execute(self.q["reset_queue_starts"])
                conn.execute(self.q["reset_counters"])
            self._config_cache = self._hooks_cache = None
            self._wake(conn)
        return deleted

    @operation()
    def finished_since(self, since_ms: int) -> dict[str, int]:
        counts = dict.fromkeys((COMPLETED, DEAD, CANCELLED), 0)
        for row in self._connection().execute(self.q["finished_since"], (since_ms,)):
            counts[row["state"]] = int(row["n"])
        return counts

    # -- schedules

    @operation()
    def add_schedule(self, schedule: Schedule) -> None:
        with self._transaction() as conn:
            conn.execute(
                self.q["upsert_schedule"],
                {
                    "name": schedule.name,
                    "cron": schedule.cron,
                    "every_s": schedule.every_s,
                    "tz": schedule.tz,
                    "job": self._json(schedule.job),
                    "now": schedule.created_at_ms,
                    "next_at": schedule.next_at_ms,
                },
            )
            self._wake(conn)

    @operation()
    def remove_schedule(self, name: str) -> bool:
        with self._transaction() as conn:
            return bool(conn.execute(self.q["delete_schedule"], (name,)).rowcount == 1)

    @operation()
    def schedules(self) -> list[Schedule]:
        return [self._schedule(r) for r in self._connection().execute(self.q["schedules"])]

    @operation(runner=True)
    def next_schedule_ms(self) -> int | None:
        value = self._value(self._connection(), "next_schedule")
        return None if value is None else int(value)

    @operation(runner=True)
    def fire_schedules(self) -> list[Firing]:
        # A schedule another runner is firing at the same moment is skipped (locked on
        # PostgreSQL; SQLite has one writer), so a slot fires once; replaying after a lost
        # COMMIT finds the slot moved on already.
        from queuectl.schedule import next_slot_ms

        now = self.now()
        fired: list[Firing] = []
        with self._transaction() as conn:
            default_retries = int(self._config(conn)["max_retries"])
            due = [self._schedule(r) for r in conn.execute(self.q["due_schedules"], (now,))]
            for schedule in due:
                fired.append(self._fire(conn, schedule, now, default_retries))
                next_at = next_slot_ms(
                    schedule.cron, schedule.every_s, schedule.tz, schedule.created_at_ms, now
                )
                conn.execute(
                    self.q["advance_schedule"],
                    {"now": now, "next_at": next_at, "name": schedule.name},
                )
            if fired:
                self._wake(conn)
        return fired

    def _fire(self, conn: Any, schedule: Schedule, now: int, default_retries: int) -> Firing:
        """Enqueue one slot's job inside a savepoint: one bad schedule spoils no other."""
        from queuectl.schedule import slot_job_id

        job_id = slot_job_id(schedule.name, schedule.next_at_ms)
        conn.execute(self.q["savepoint"])
        try:
            held = self._insert_one(conn, new_job(schedule.job), job_id, now, default_retries)
        except (QueuectlError, self.unique_violation) as exc:
            conn.execute(self.q["rollback_savepoint"])
            error = str(exc) if isinstance(exc, QueuectlError) else f"job {job_id!r} already exists"
            return Firing(schedule.name, None, error)
        conn.execute(self.q["release_savepoint"])
        return Firing(schedule.name, held or job_id, None)


def _runner(row: Any, queues: list[str] | None, running: list[str]) -> Runner:
    """The one mapping of a `runners` row (or its JSON object) to a Runner."""
    return Runner(
        id=row["id"],
        host=row["host"],
        pid=row["pid"],
        pid_started=row["pid_started"],
        workers=row["workers"],
        queues=None if queues is None else list(queues),
        started_at_ms=row["started_at"],
        heartbeat_at_ms=row["heartbeat_at"],
        stop_requested=bool(row["stop_requested"]),
        running=running,
    )


def _check_cancellable(job_id: str, state: str) -> None:
    if state not in CANCELLABLE_STATES:
        raise WrongStateError(f"job {job_id!r} is {state}; it cannot be cancelled")


def _inserted_job(job: NewJob, row: Sequence[Any]) -> Job:
    """The job of a plain batch (no dependency) just inserted as `row` (in `insert_jobs`'
    column order)."""
    # Positional, and no copy of an empty field: a bulk enqueue builds one Job per row.
    return Job(
        row[0],  # id
        row[1],  # command
        row[2],  # state
        row[3],  # queue
        row[4],  # priority
        0,  # attempts
        row[5],  # max_retries
        row[6],  # timeout
        row[7],  # run_at_ms
        [],  # depends_on
        list(job.no_retry_exit_codes) if job.no_retry_exit_codes else [],
        row[11],  # unique_key
        row[12],  # cwd
        dict(job.env) if job.env else {},
        row[14],  # created_at_ms
        row[15],  # updated_at_ms
        None,  # started_at_ms
        row[16],  # finished_at_ms
        None,  # exit_code
        row[17],  # last_error
        None,  # duration_ms
        None,  # lease_owner
        None,  # lease_expires_at_ms
        row[19],  # lock
    )


class _StreamDuplicate(Exception):
    """A batch of a stream met a duplicate id; `taken`: its ids already stored at the time
    (before the stream, or earlier in it), told apart once the transaction is rolled back."""

    def __init__(self, batch: Sequence[tuple[str, NewJob]], taken: set[str]) -> None:
        self.batch, self.taken = batch, taken


def _ids(batch: Sequence[tuple[str, NewJob]]) -> list[str]:
    return [job.id for _, job in batch if job.id is not None]


def _new_id() -> str:
    return _new_ids(1)[0]


def _new_ids(n: int) -> list[str]:
    """N new ids in ascending order: the time in milliseconds (11 hex digits), then a random
    52-bit start counted up. A batch's ids go in at one end of the id index, not all over it
    (a third faster to insert); ids from two processes collide only when their batches start
    within n of each other in the same millisecond."""
    prefix = f"{time.time_ns() // 1_000_000:011x}"
    start = int.from_bytes(os.urandom(7)) >> 4
    if start + n > 1 << 52:
        start -= n
    return [f"{prefix}{value:013x}" for value in range(start, start + n)]
