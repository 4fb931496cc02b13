"""The Store interface by role, the records it exchanges, and open_store(target).

The records live in store/records.py, the flows in one module each over a dialect
(store/dialect.py; sqlite.py, postgres.py), composed by store/sqlstore.py; open_store
(store/open.py) picks the dialect. Callers depend on the role they use: RunnerStore,
ReadStore, AdminStore, or Store for all of them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol

from queuectl.store.records import (
    BULK_BATCH,
    DURATION_BOUNDS_MS,
    OVER_ALL_BOUNDS,
    Attempt,
    AuditEntry,
    Batch,
    Bucket,
    Claim,
    Exchange,
    Firing,
    Hook,
    Housekeeping,
    JobFilter,
    Ledger,
    Output,
    Page,
    QueueDefaults,
    QueueSettings,
    Runner,
    Schedule,
    Token,
    Totals,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Sequence

    from queuectl.clock import Clock
    from queuectl.lifecycle import Outcome
    from queuectl.models import Job, NewJob
    from queuectl.usage import Usage

__all__ = [
    "BULK_BATCH",
    "DURATION_BOUNDS_MS",
    "OVER_ALL_BOUNDS",
    "AccessStore",
    "AdminStore",
    "Attempt",
    "AuditEntry",
    "Batch",
    "Bucket",
    "Claim",
    "Exchange",
    "Firing",
    "Hook",
    "Housekeeping",
    "JobFilter",
    "Ledger",
    "Listener",
    "Output",
    "Page",
    "QueueDefaults",
    "QueueSettings",
    "ReadStore",
    "Runner",
    "RunnerStore",
    "Schedule",
    "Store",
    "Token",
    "Totals",
    "default_target",
    "open_store",
]


class BaseStore(Protocol):
    """What every role shares: the store's clock, its schema, closing it.

    Each method is one transaction (or one read). Every instant written comes from `now()`,
    the store's clock (the database server's on PostgreSQL). A parameter's default is shown
    as `...`: its value is the flow's that implements the method, written there once.
    """

    @property
    def kind(self) -> str:
        """sqlite or postgres."""
        ...

    @property
    def clock(self) -> Clock: ...

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


class RunnerStore(BaseStore, Protocol):
    """What a runner needs: the exchange and the writes fenced by its claims, its registration
    and leases, and the maintenance runners do.

    Fenced writes (`finish_and_claim`'s settlements, `release`, `save_output`) change a job only
    while it is `processing` under the given owner and claim token (never repeated for a job,
    unlike attempt numbers, which a requeue starts again): a runner that lost a job (lease
    expired, cancelled) can never overwrite what happened after.

    A running attempt that is cancelled keeps its runner's lease (its lock, its queue's slot)
    until the runner reports its processes gone (its outcome, `abandoned`, in
    `finish_and_claim`) or the runner is reaped; its job, run again meanwhile, waits for that.
    """

    def ledger(self) -> Ledger:
        """A new ledger for one runner's claims, to pass to finish_and_claim and release."""
        ...

    def preload(self) -> None:
        """Make every flow now (each loads its module): a long-lived runner then never needs
        a file descriptor to import one, when it may have none to spare."""
        ...

    def finish_and_claim(
        self,
        owner: str,
        outcomes: Sequence[Outcome],
        want: int,
        queues: Sequence[str] | None,
        lease_s: float,
        ledger: Ledger | None = ...,
        enforces: int = ...,
        tags: Sequence[str] = ...,
    ) -> Exchange:
        """Settle finished attempts still ours, then claim up to `want` due jobs (of `queues`,
        None: every queue; whose required tags are all among `tags`), leased to `owner` for
        `lease_s`. `ledger` is the runner's (from `ledger()`; None: the store's own, for one
        runner a store). A job with limits is claimed only if `enforces`
        (models.limits_mask) has every one it runs under."""
        ...

    def release(self, owner: str, job_id: str, token: int, ledger: Ledger | None = ...) -> bool:
        """Give back a job stopped by its runner's shutdown: pending again, attempt returned.
        Fenced; whether it was still ours."""
        ...

    def save_output(
        self, owner: str, job_id: str, token: int, data: bytes, dropped: int = ...
    ) -> bool:
        """Store the running attempt's output so far (its tail, after `dropped` bytes), or all
        of it once the attempt was cancelled while it ran. Fenced; whether it was still ours."""
        ...

    def save_progress(
        self, job_id: str, token: int, done: float, total: float, message: str | None
    ) -> bool:
        """Record the progress report of the attempt of claim `token`; nothing (False) unless
        it is the job's running attempt."""
        ...

    def owned_jobs(self, owner: str) -> dict[str, int]:
        """The jobs whose processes `owner` may still have (running, or cancelled and not yet
        reported gone), with the attempt numbers those processes carry."""
        ...

    def register_runner(self, runner: Runner) -> None:
        """Record a runner (its start and heartbeat instants are the store's now)."""
        ...

    def heartbeat(self, owner: str, lease_s: float) -> bool | None:
        """Renew the runner and extend every lease it holds by `lease_s`. Whether a stop was
        requested; None when the runner is not registered (it was taken for dead)."""
        ...

    def unregister_runner(self, owner: str) -> None: ...

    def housekeeping(
        self, owner: str, queues: Sequence[str] | None, tags: Sequence[str] = ...
    ) -> Housekeeping:
        """Everything a runner (serving `queues`, None: every queue) checks as a matter of
        routine, read at once; folds the counters' deltas into their base if many piled up."""
        ...

    def reap(self, dead_owners: Sequence[str], exclude: Sequence[str] = ...) -> list[str]:
        """Unregister runners known dead and recover their jobs, and those of any expired
        lease but the leases of the runners in `exclude`, as failed attempts (`worker lost`);
        the jobs recovered."""
        ...

    def expire(self, states: Sequence[str], finished_before_ms: int, batch: int) -> int:
        """Delete at most `batch` such jobs in one short transaction; how many."""
        ...

    def forget_finished_minutes(self, before_ms: int) -> None:
        """Delete what was counted of the attempts that ended before the instant's minute
        (finished_per_minute, recent_durations)."""
        ...

    def next_schedule_ms(self) -> int | None:
        """The earliest next slot of any schedule."""
        ...

    def fire_schedules(self) -> list[Firing]:
        """Enqueue one job for each schedule whose slot has come, and move it to its next
        slot; a slot fires once however many runners call this at the same time."""
        ...

    def config(self) -> dict[str, float]: ...

    def expire_unstarted(self, batch: int = ...) -> list[str]:
        """Cancel a batch of the jobs not started by their deadline, and their dependants, in
        one short transaction; the ids expired (fewer than `batch`: none is left)."""
        ...

    def listener(self, name: str) -> Listener | None:
        """Wakeups for one runner: readable when work may have become available."""
        ...


class ReadStore(BaseStore, Protocol):
    """What reads need: jobs, their history and output, counts, and the settings as set."""

    def get(self, job_id: str) -> Job | None: ...

    def ids_with_prefix(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` job ids that start with `prefix`, in order."""
        ...

    def list_jobs(
        self, where: JobFilter = ..., limit: int | None = ..., before: int | None = ...
    ) -> Page:
        """Up to `limit` (None: all) jobs that `where` takes, newest first; `before` continues
        a previous page."""
        ...

    def search_jobs(
        self, where: JobFilter, limit: int, before: int | None, window: int = ...
    ) -> Page:
        """Jobs newest first that `where` takes, its text (given) included. Text the store's
        index can look up (three characters or more) is found from it, a whole page at once;
        otherwise a bounded window of jobs before `before` (None: from the newest) is read,
        so a page may be short, or empty, with a position to read on from."""
        ...

    def output(self, job_id: str, nth: int | None = ...) -> Output | None:
        """The output of the job's last attempt, or of the `nth` of all the attempts it ever
        made, oldest first (None: no such attempt)."""
        ...

    def history(self, job_id: str) -> list[Attempt]:
        """Every attempt of the job, oldest first."""
        ...

    def dependencies(self, job_id: str) -> dict[str, str]:
        """The jobs a job still depends on (its dependency edges; one deleted since is none
        any more), with their states."""
        ...

    def conditions(self, job_id: str) -> dict[str, str]:
        """The condition of each dependency a job still has (completed, finished, failed)."""
        ...

    def batch_waits(self, job_id: str) -> list[str]:
        """The batches a job still waits for (`after_batch`), by name."""
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

    def finished_since(self, since_ms: int) -> dict[str, int]:
        """Jobs that finished at or after the instant, per state (completed, dead,
        cancelled)."""
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

    def runners(self) -> list[Runner]:
        """Every registered runner, with the jobs it runs."""
        ...

    def queues(self) -> dict[str, bool]:
        """Queues with settings: name -> paused."""
        ...

    def queue_settings(self) -> dict[str, QueueSettings]:
        """Queues with a settings row (paused or limited once), by name."""
        ...

    def window_starts(self, queue: str, since_ms: int) -> list[int]:
        """The recorded starts of a rate-limited queue after the instant, oldest first."""
        ...

    def lock_holder(self, key: str) -> str | None:
        """The id of the running job holding the lock, if any."""
        ...

    def batches(self, name: str | None = ...) -> list[Batch]:
        """Every batch, oldest first, or the one named (an empty list if none)."""
        ...

    def set_batch_limit(self, name: str, concurrency: int | None) -> bool:
        """Set a batch's concurrency limit (None: none); whether the batch exists."""
        ...

    def schedules(self) -> list[Schedule]: ...

    def queue_defaults(self) -> dict[str, QueueDefaults]:
        """The queues whose jobs take defaults, with them."""
        ...

    def hooks(self) -> list[Hook]: ...


class AdminStore(BaseStore, Protocol):
    """What clients change: jobs enqueued, cancelled, requeued or purged, and the settings."""

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

    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        """Cancel the named jobs (all or none) in one transaction; cascades to dependants.
        Returns the jobs cancelled, as they were before."""
        ...

    def cancel_all(
        self,
        queue: str | None = ...,
        batch: int = ...,
        progress: Callable[[int], None] | None = ...,
        in_batch: str | None = ...,
    ) -> int:
        """Cancel every job that may still run (of `queue`, None: of every queue; of the batch
        `in_batch` if given, whatever its queue) as it began,
        and their dependants, `batch` jobs a transaction: other clients' writes go on between
        batches. `progress` gets the jobs cancelled so far after each. How many were."""
        ...

    def requeue(
        self,
        job_ids: Sequence[str] | None,
        states: Sequence[str],
        queue: str | None = ...,
        batch: int = ...,
        progress: Callable[[int], None] | None = ...,
        in_batch: str | None = ...,
    ) -> list[str]:
        """Move finished jobs in `states` back to pending with attempts 0, history kept: the
        named ones (each must be in one of `states`; all or none), or with None every such job
        (of `queue`), `batch` a transaction as cancel_all does."""
        ...

    def purge(
        self,
        states: Sequence[str],
        finished_before_ms: int,
        batch: int = ...,
        progress: Callable[[int], None] | None = ...,
    ) -> int:
        """Delete jobs in `states` that finished before the instant, with their history,
        `batch` a transaction as cancel_all does; how many."""
        ...

    def bulk(
        self,
        action: str | None,
        where: JobFilter,
        batch: int = ...,
        progress: Callable[[int, int], None] | None = ...,
        window: int = ...,
    ) -> tuple[int, int]:
        """Cancel, retry (run again), hold, release or delete (`action`; None: only count)
        every job that `where` takes when it begins, at most `batch` a transaction (fewer if
        one would take long), found outside them; jobs whose state forbids the action are
        matched, not changed. `progress(matched, changed)` after each batch. (matched,
        changed)."""
        ...

    def request_stop(self) -> int:
        """Ask every runner to stop gracefully; how many were asked."""
        ...

    def withdraw_stop(self) -> int:
        """Withdraw the stop asked of every runner still draining; how many it reaches."""
        ...

    def set_config(self, key: str, value: float) -> None: ...

    def set_paused(self, queue: str, paused: bool) -> None: ...

    def set_limits(
        self,
        queue: str,
        concurrency: int | None,
        rate: tuple[int, int] | None,
        *,
        keep_concurrency: bool = ...,
        keep_rate: bool = ...,
    ) -> None:
        """Set a queue's concurrency and rate (jobs, window ms); None removes a limit, keep_X
        leaves that limit as the row has it when written (not as it was read before)."""
        ...

    def set_job_defaults(self, queue: str, values: dict[str, Any]) -> None:
        """Set the defaults of a queue's jobs' limits named in `values` (memory, cpus,
        max_procs; None removes one); the others stay as the row has them."""
        ...

    def usage_totals(self) -> list[Usage]:
        """What the attempts that ended cost since the store began, per queue and bucket of
        peak memory (usage.PEAK_BOUNDS_BYTES)."""
        ...

    def cpu_since(self, since_ms: int) -> int:
        """CPU milliseconds of the attempts that ended from the instant's minute on."""
        ...

    def add_schedule(self, schedule: Schedule) -> None:
        """Create or replace a schedule by name."""
        ...

    def remove_schedule(self, name: str) -> bool: ...

    def add_hook(self, hook: Hook) -> None:
        """Create or replace a hook by name."""
        ...

    def remove_hook(self, name: str) -> bool: ...

    def reset(self, everything: bool) -> dict[str, int]:
        """Delete every job with its history in one transaction (`everything`: schedules,
        hooks, queue settings, configuration and the counters of `totals` too); refused with ConflictError while a
        runner is registered. The counts deleted: jobs, attempts."""
        ...

    def hold(self, job_ids: Sequence[str]) -> list[Job]:
        """Hold the jobs named (all or none, each pending or failed: else WrongStateError) so
        that no runner claims them until released; the jobs as they are now."""
        ...

    def release_held(self, job_ids: Sequence[str]) -> list[Job]:
        """Release held jobs (all or none, each pending or failed); the jobs as they are now."""
        ...

    def hold_queue(self, queue: str, batch: int = ...) -> int:
        """Hold every pending or failed job of a queue, in batches that each commit."""
        ...

    def release_queue(self, queue: str, batch: int = ...) -> int:
        """Release every held job of a queue, in batches that each commit."""
        ...

    def hold_batch(self, batch: str, size: int = ...) -> int:
        """Hold every pending or failed job of a batch, `size` a transaction."""
        ...

    def release_batch(self, batch: str, size: int = ...) -> int:
        """Release every held job of a batch, `size` a transaction."""
        ...

    def edit(self, job_id: str, job: NewJob, fields: Sequence[str], by: str) -> Job:
        """Change the `fields` (names of NewJob input: command, priority, queue, run_at or
        delay, env (merged), timeout, max_retries, lock, depends_on, expires, memory, cpus,
        max_procs) of a pending or failed job to `job`'s, atomically against claims;
        WrongStateError otherwise."""
        ...

    def set_queue_defaults(
        self, queue: str, defaults: QueueDefaults, keep: Collection[str] = ...
    ) -> None:
        """Set a queue's defaults for its jobs that set none (None: no default; those named in
        `keep`, fields of QueueDefaults, stay as stored); runners apply them to the attempts
        they start from then on."""
        ...


class AccessStore(BaseStore, Protocol):
    """Who may call the API (tokens by role, found by the SHA-256 of the token, which is never
    stored), and the audit of what mutating requests did."""

    def add_token(self, name: str, role: str, digest: str) -> Token:
        """Store a token's digest under a new name; ConflictError if the name is taken."""
        ...

    def tokens(self) -> list[Token]: ...

    def revoke_token(self, name: str) -> bool:
        """Delete the token; whether there was one."""
        ...

    def token_role(self, digest: str) -> tuple[str, str] | None:
        """The name and role of the token with this digest."""
        ...

    def record_audit(self, entry: AuditEntry) -> None:
        """Append an entry (`at_ms` 0: the store's now)."""
        ...

    def audit(self, since_ms: int, limit: int) -> list[AuditEntry]:
        """The newest `limit` entries from the instant on, newest first."""
        ...

    def expire_audit(self, before_ms: int, batch: int) -> int:
        """Delete at most `batch` entries older than the instant; how many."""
        ...


class Store(RunnerStore, ReadStore, AdminStore, AccessStore, Protocol):
    """What the queue needs from a database: every role."""


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
    from queuectl.store.open import open_target  # the dialects load only when a store opens

    return open_target(target or default_target(), clock, durable)
