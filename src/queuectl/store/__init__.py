"""The Store interface, the records it exchanges, and open_store(target) that picks a dialect.

Every flow is written once in `store/core.py` (SQLStore); `sqlite.py` and `postgres.py` supply
only a connection, a transaction, error translation, wakeups and migrations.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from queuectl.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from queuectl.clock import Clock
    from queuectl.lifecycle import Outcome, Settlement
    from queuectl.models import Job, NewJob


#: Jobs a bulk change (cancel_all, requeue of every dead job, purge) takes per transaction:
#: each batch commits, so other clients' enqueues and claims wait for one batch at most.
BULK_BATCH = 1000


@dataclass(frozen=True)
class Claim:
    """A job taken by a runner: what it needs to run one attempt."""

    id: str
    attempt: int
    #: This claim's token: the job's claims counted, never reset (its attempt numbers start
    #: again when it is requeued). Every write about the attempt is fenced by it.
    token: int
    command: str
    cwd: str
    env: dict[str, str]
    timeout: float | None
    queue: str
    priority: int
    #: The job's retry rules, for the outcome (lifecycle.Fence); None when the claim did not
    #: read them (the store then reads them when it settles).
    max_retries: int | None = None
    no_retry_exit_codes: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Exchange:
    """What `finish_and_claim` did: how each outcome settled (fenced-out ones are missing), the
    jobs claimed, and when the next delayed job falls due (read in the same transaction, so a
    job that becomes due between a claim and the runner's sleep cannot be missed)."""

    settled: dict[str, Settlement]
    claims: list[Claim]
    next_due_ms: int | None = None


@dataclass
class Runner:
    """A runner process as registered in the store."""

    id: str
    host: str
    pid: int
    workers: int
    queues: list[str] | None
    started_at_ms: int
    heartbeat_at_ms: int
    pid_started: str | None = None
    stop_requested: bool = False
    running: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Housekeeping:
    """What a runner's housekeeping reads from the store, in one statement."""

    #: The jobs leased to the runner and running now, with their claims' tokens.
    owned: dict[str, int]
    #: Every registered runner (without their running jobs), the reader included if it is.
    runners: list[Runner]
    #: Whether a lease of another runner has expired.
    expired: bool
    #: The earliest next slot of any schedule.
    next_schedule_ms: int | None
    #: Whether a job of the reader's queues may start now, flow control aside.
    startable: bool
    config: dict[str, float]


@dataclass
class Schedule:
    """A periodic job: its template, and its last and next slots."""

    name: str
    cron: str | None
    every_s: float | None
    tz: str | None
    job: dict[str, Any]
    created_at_ms: int
    last_at_ms: int | None
    next_at_ms: int


@dataclass(frozen=True)
class Hook:
    """A job to enqueue when a job (of `queue`, None: of any) reaches one of `events`."""

    name: str
    events: list[str]
    queue: str | None
    job: dict[str, Any]
    created_at_ms: int


@dataclass(frozen=True)
class Firing:
    """One slot of a schedule fired: the job it enqueued, or why it could not."""

    schedule: str
    job_id: str | None
    error: str | None


@dataclass(frozen=True)
class Attempt:
    """One attempt of a job, as its history keeps it (SPEC 9.3)."""

    attempt: int
    runner: str | None
    host: str | None
    started_at_ms: int
    finished_at_ms: int | None
    exit_code: int | None
    error: str | None
    duration_ms: int | None
    #: Its claim's token (see Claim); None for an attempt that ended before tokens existed.
    token: int | None = None


@dataclass(frozen=True)
class Output:
    """What one attempt wrote: the kept tail, and how many bytes came before it."""

    attempt: int
    data: bytes
    dropped: int

    def shown(self) -> bytes:
        """The output as `logs` shows it: a marker line first when bytes were dropped."""
        if not self.dropped:
            return self.data
        # A cut inside a UTF-8 character leaves its last bytes (1 to 3 continuation bytes)
        # first: they are dropped too, so the text starts on a whole character.
        # (Four or more are no UTF-8 text: kept as they are.)
        torn = 0
        while torn < min(4, len(self.data)) and 0x80 <= self.data[torn] <= 0xBF:
            torn += 1
        torn = 0 if torn == 4 else torn
        marker = f"[queuectl: {self.dropped + torn} earlier bytes dropped]\n"
        return marker.encode() + self.data[torn:]


#: The duration buckets that recent_durations and totals count in, in ms (migrations 0009 and
#: 0011 hold them too).
DURATION_BOUNDS_MS = (10, 50, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000, 1800000, 3600000)
#: recent_durations' stored bound of a duration longer than every bound.
OVER_ALL_BOUNDS = -2


@dataclass(frozen=True)
class Bucket:
    """Durations that fell at or under `bound_ms` (None: over every bound)."""

    bound_ms: int | None
    count: int
    total_ms: int


@dataclass(frozen=True)
class Totals:
    """The counters that only go up (retention, purge and `reset` of jobs leave them), per
    queue: jobs enqueued, jobs finished per final state, attempts ended per outcome
    (completed, failed, timed_out, lost, cancelled) and their durations' buckets."""

    enqueued: dict[str, int] = field(default_factory=dict)
    finished: dict[str, dict[str, int]] = field(default_factory=dict)
    attempts: dict[str, dict[str, int]] = field(default_factory=dict)
    durations: dict[str, list[Bucket]] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSettings:
    """A queue's settings row (SPEC 9.2): paused, its limits (None: none), and its jobs
    running now."""

    paused: bool
    concurrency: int | None
    rate_jobs: int | None
    rate_ms: int | None
    running: int


@dataclass(frozen=True)
class Page:
    """Jobs newest first, and the position to continue from (None: nothing more)."""

    jobs: list[Job]
    next_before: int | None


class Store(Protocol):
    """What the queue needs from a database. Each method is one transaction (or one read).

    Fenced writes (`finish_and_claim`'s settlements, `release`, `save_output`) change a job only
    while it is `processing` under the given owner and claim token (never repeated for a job,
    unlike attempt numbers, which a requeue starts again): a runner that lost a job (lease
    expired, cancelled) can never overwrite what happened after.

    A running attempt that is cancelled keeps its runner's lease (its lock, its queue's slot)
    until the runner reports its processes gone (its outcome, `abandoned`, in
    `finish_and_claim`) or the runner is reaped; its job, run again meanwhile, waits for that. Every instant written comes
    from `now()`, the store's clock (the database server's on PostgreSQL).
    """

    kind: ClassVar[str]
    clock: Clock

    def now(self) -> int:
        """The store's clock, epoch milliseconds."""
        ...

    def migrate(self) -> int:
        """Create or upgrade the schema; its version. Refuses a newer schema."""
        ...

    def describe(self) -> dict[str, Any]:
        """Kind, target (without secrets) and schema version."""
        ...

    def verify(self) -> None:
        """Check the store's structure; StoreError names the first problem."""
        ...

    def close(self) -> None: ...

    # -- jobs

    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]:
        """Insert every job or none; a job whose unique_key an active job holds yields that
        job instead. DuplicateJobError names an id that exists or repeats."""
        ...

    def enqueue_batches(
        self, batches: Iterable[Sequence[tuple[str, NewJob]]], each: Callable[[list[Job]], None]
    ) -> int:
        """Enqueue batches of (label, job) in one transaction, or none; `each` sees each
        batch's jobs before the commit; an error names the label of its job."""
        ...

    def finish_and_claim(
        self,
        owner: str,
        outcomes: Sequence[Outcome],
        want: int,
        queues: Sequence[str] | None,
        lease_s: float,
    ) -> Exchange:
        """Settle finished attempts still ours, then claim up to `want` due jobs (of `queues`,
        None: every queue), leased to `owner` for `lease_s`."""
        ...

    def release(self, owner: str, job_id: str, token: int) -> bool:
        """Give back a job stopped by its runner's shutdown: pending again, attempt returned.
        Fenced; whether it was still ours."""
        ...

    def save_output(
        self, owner: str, job_id: str, token: int, data: bytes, dropped: int = 0
    ) -> bool:
        """Store the running attempt's output so far (its tail, after `dropped` bytes), or all
        of it once the attempt was cancelled while it ran. Fenced; whether it was still ours."""
        ...

    def owned_jobs(self, owner: str) -> dict[str, int]:
        """The jobs whose processes `owner` may still have (running, or cancelled and not yet
        reported gone), with the attempt numbers those processes carry."""
        ...

    def get(self, job_id: str) -> Job | None: ...

    def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` job ids that start with `prefix`, in order."""
        ...

    def list_jobs(
        self,
        states: Sequence[str] | None,
        queues: Sequence[str] | None,
        limit: int | None,
        before: int | None,
    ) -> Page:
        """Jobs newest first, in any of `states` and `queues` (None or empty: any); `before`
        continues a previous page."""
        ...

    def output(self, job_id: str, nth: int | None = None) -> Output | None:
        """The output of the job's last attempt, or of the `nth` of all the attempts it ever
        made, oldest first (None: no such attempt)."""
        ...

    def history(self, job_id: str) -> list[Attempt]:
        """Every attempt of the job, oldest first."""
        ...

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue, then per state (states with no job are absent)."""
        ...

    def done_since(self, since_ms: int) -> int:
        """Jobs completed at or after `since_ms`."""
        ...

    def finished_per_minute(self, since_ms: int) -> dict[int, dict[str, int]]:
        """Attempts that ended since the minute of the instant: minute (epoch ms // 60000) ->
        how they ended (completed, failed, dead) -> count. Counted as they end, so a job that
        failed once, then completed, counts in both of its minutes, and retention deletes none
        of it."""
        ...

    def attempts_by_queue(self) -> dict[str, dict[str, int]]:
        """Attempts started by the stored jobs, per queue, then per state."""
        ...

    def recent_durations(self, since_ms: int) -> dict[str, list[Bucket]]:
        """Durations of the attempts that ended (completed, failed, dead) since the minute of
        the instant, per queue, counted in the smallest of DURATION_BOUNDS_MS that holds each
        (None: beyond the last)."""
        ...

    def oldest_due(self, now_ms: int) -> dict[str, int]:
        """Per queue, the earliest run_at of the jobs that may start now."""
        ...

    def totals(self) -> Totals:
        """The counters that only go up, as of now."""
        ...

    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel the named jobs (all or none) in one transaction; cascades to dependants.
        Returns the jobs cancelled, as they were before."""
        ...

    def cancel_all(
        self,
        queue: str | None = None,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Cancel every job that may still run (of `queue`, None: of every queue) as it began,
        and their dependants, `batch` jobs a transaction: other clients' writes go on between
        batches. `progress` gets the jobs cancelled so far after each. How many were."""
        ...

    def requeue(
        self,
        job_ids: Sequence[str] | None,
        states: Sequence[str],
        queue: str | None = None,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> list[str]:
        """Move finished jobs in `states` back to pending with attempts 0, history kept: the
        named ones (each must be in one of `states`; all or none), or with None every such job
        (of `queue`), `batch` a transaction as cancel_all does."""
        ...

    def dependencies(self, job_id: str) -> dict[str, str]:
        """The jobs a job still depends on (its dependency edges; one deleted since is none
        any more), with their states."""
        ...

    def purge(
        self,
        states: Sequence[str],
        finished_before_ms: int,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete jobs in `states` that finished before the instant, with their history,
        `batch` a transaction as cancel_all does; how many."""
        ...

    def expire(self, states: Sequence[str], finished_before_ms: int, batch: int) -> int:
        """Delete at most `batch` such jobs in one short transaction; how many."""
        ...

    def forget_finished_minutes(self, before_ms: int) -> None:
        """Delete what was counted of the attempts that ended before the instant's minute
        (finished_per_minute, recent_durations)."""
        ...

    # -- runners and leases

    def register_runner(self, runner: Runner) -> None:
        """Record a runner (its start and heartbeat instants are the store's now)."""
        ...

    def heartbeat(self, owner: str, lease_s: float) -> bool | None:
        """Renew the runner and extend every lease it holds by `lease_s`. Whether a stop was
        requested; None when the runner is not registered (it was taken for dead)."""
        ...

    def unregister_runner(self, owner: str) -> None: ...

    def runners(self) -> list[Runner]:
        """Every registered runner, with the jobs it runs."""
        ...

    def request_stop(self) -> int:
        """Ask every runner to stop gracefully; how many were asked."""
        ...

    def withdraw_stop(self) -> int:
        """Withdraw the stop asked of every runner still draining; how many it reaches."""
        ...

    def housekeeping(self, owner: str, queues: Sequence[str] | None) -> Housekeeping:
        """Everything a runner (serving `queues`, None: every queue) checks as a matter of
        routine, read at once; folds the counters' deltas into their base if many piled up."""
        ...

    def reap(self, dead_owners: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
        """Unregister runners known dead and recover their jobs, and those of any expired
        lease but the leases of the runners in `exclude`, as failed attempts (`worker lost`);
        the jobs recovered."""
        ...

    # -- configuration and queues

    def config(self) -> dict[str, float]: ...

    def set_config(self, key: str, value: float) -> None: ...

    def queues(self) -> dict[str, bool]:
        """Queues with settings: name -> paused."""
        ...

    def set_paused(self, queue: str, paused: bool) -> None: ...

    # -- flow control (SPEC 9.2)

    def queue_settings(self) -> dict[str, QueueSettings]:
        """Queues with a settings row (paused or limited once), by name."""
        ...

    def set_limits(
        self,
        queue: str,
        concurrency: int | None,
        rate: tuple[int, int] | None,
        *,
        keep_concurrency: bool = False,
        keep_rate: bool = False,
    ) -> None:
        """Set a queue's concurrency and rate (jobs, window ms); None removes a limit, keep_X
        leaves that limit as the row has it when written (not as it was read before)."""
        ...

    def window_starts(self, queue: str, since_ms: int) -> list[int]:
        """The recorded starts of a rate-limited queue after the instant, oldest first."""
        ...

    def lock_holder(self, key: str) -> str | None:
        """The id of the running job holding the lock, if any."""
        ...

    # -- schedules

    def add_schedule(self, schedule: Schedule) -> None:
        """Create or replace a schedule by name."""
        ...

    def remove_schedule(self, name: str) -> bool: ...

    def schedules(self) -> list[Schedule]: ...

    def next_schedule_ms(self) -> int | None:
        """The earliest next slot of any schedule."""
        ...

    def fire_schedules(self) -> list[Firing]:
        """Enqueue one job for each schedule whose slot has come, and move it to its next
        slot; a slot fires once however many runners call this at the same time."""
        ...

    # -- hooks

    def add_hook(self, hook: Hook) -> None:
        """Create or replace a hook by name."""
        ...

    def remove_hook(self, name: str) -> bool: ...

    def hooks(self) -> list[Hook]: ...

    # -- reset and recent counts

    def reset(self, everything: bool) -> dict[str, int]:
        """Delete every job with its history in one transaction (`everything`: schedules,
        hooks, queue settings, configuration and the counters of `totals` too); refused with ConflictError while a
        runner is registered. The counts deleted: jobs, attempts."""
        ...

    def finished_since(self, since_ms: int) -> dict[str, int]:
        """Jobs that finished at or after the instant, per state (completed, dead,
        cancelled)."""
        ...

    # -- wakeups

    def listener(self, name: str) -> Listener | None:
        """Wakeups for one runner: readable when work may have become available."""
        ...


class Listener(Protocol):
    """What a runner waits on for wakeups: readable when something may have changed."""

    def fileno(self) -> int: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...


def default_target() -> str:
    """`QUEUECTL_DB`, else `$XDG_DATA_HOME/queuectl/queue.db`."""
    if os.environ.get("QUEUECTL_DB"):
        return os.environ["QUEUECTL_DB"]
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data_home, "queuectl", "queue.db")


def open_store(
    target: str | None = None, clock: Clock | None = None, durable: bool = True
) -> Store:
    """The store for a file path, `sqlite:///abs/path` or `postgresql://...` URL, migrated.

    `durable=False` (the runner's choice) lets SQLite skip the fsync of each commit: a state
    change lost to a power cut is redone, since delivery is at least once anyway.
    """
    target = target or default_target()
    if target.startswith(("postgresql://", "postgres://")):
        from queuectl.extras import require

        require("a postgresql:// store", "postgres", "psycopg")
        from queuectl.store.postgres import PostgresStore
        from queuectl.urls import check_postgres_url

        check_postgres_url(target)

        store: Store = PostgresStore(target, clock)
    else:
        from queuectl.store.sqlite import SQLiteStore

        if target.startswith("sqlite:///"):
            path = target[len("sqlite://") :]
        elif target.startswith("sqlite:"):
            raise InvalidInputError(f"--db: {target!r}: use sqlite:///absolute/path")
        elif "://" in target:
            raise InvalidInputError(
                f"--db: {target!r}: expected a file path, sqlite:///path or postgresql://..."
            )
        else:
            path = target
        store = SQLiteStore(os.path.abspath(os.path.expanduser(path)), clock, durable)
    store.migrate()
    return store
