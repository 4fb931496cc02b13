"""The Store interface every backend implements, and open_store(target) that picks one.

Each method is one transaction. Methods that end an attempt are fenced: they change a job only
while it is still `processing` under the given owner and attempt number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from queuectl.errors import InvalidInputError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from queuectl.clock import Clock
    from queuectl.lifecycle import Outcome, Settlement
    from queuectl.models import Job, NewJob


@dataclass(frozen=True)
class Claim:
    """A job taken by a runner: what it needs to run one attempt."""

    id: str
    attempt: int
    command: str
    cwd: str
    env: dict[str, str]
    timeout: float | None
    queue: str
    priority: int


@dataclass
class Runner:
    """A live (or not yet reaped) runner process."""

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


@dataclass
class Schedule:
    name: str
    cron: str | None
    every_s: float | None
    tz: str | None
    job: dict[str, Any]
    created_at_ms: int
    last_at_ms: int | None
    next_at_ms: int


class Store(Protocol):
    """What the queue needs from a database; SQLiteStore and PostgresStore implement it."""

    kind: str
    clock: Clock

    def migrate(self) -> int: ...
    def describe(self) -> dict[str, Any]: ...
    def verify(self) -> None: ...
    def close(self) -> None: ...

    # jobs
    def enqueue_many(self, jobs: Sequence[NewJob]) -> list[Job]: ...
    def finish_and_claim(
        self, owner: str, outcomes: Sequence[Outcome], want: int,
        queues: Sequence[str] | None, lease_s: float,
    ) -> tuple[dict[str, Settlement], list[Claim]]: ...  # fmt: skip
    def release(self, owner: str, job_id: str, attempt: int) -> bool: ...
    def save_output(self, job_id: str, data: bytes) -> None: ...
    def owned_jobs(self, owner: str) -> dict[str, int]: ...
    def next_due_ms(self) -> int | None: ...
    def get(self, job_id: str) -> Job | None: ...
    def list_jobs(
        self, state: str | None, queue: str | None, limit: int | None, before_seq: int | None
    ) -> list[tuple[int, Job]]: ...
    def output(self, job_id: str) -> bytes | None: ...
    def counts(self) -> dict[str, dict[str, int]]: ...
    def done_since(self, since_ms: int) -> int: ...
    def cancel(self, job_ids: Sequence[str]) -> list[Job]: ...
    def retry_dead(self, job_ids: Sequence[str] | None) -> list[str]: ...
    def purge(self, states: Sequence[str], finished_before_ms: int) -> int: ...

    # runners and leases
    def register_runner(self, runner: Runner) -> None: ...
    def heartbeat(self, owner: str, lease_s: float) -> bool | None: ...
    def unregister_runner(self, owner: str) -> None: ...
    def runners(self) -> list[Runner]: ...
    def request_stop(self) -> int: ...
    def reap(self, dead_owners: Sequence[str]) -> list[str]: ...

    # configuration and queues
    def config(self) -> dict[str, float]: ...
    def set_config(self, key: str, value: float) -> None: ...
    def queues(self) -> dict[str, bool]: ...
    def set_paused(self, queue: str, paused: bool) -> None: ...

    # schedules
    def add_schedule(self, schedule: Schedule) -> None: ...
    def remove_schedule(self, name: str) -> bool: ...
    def schedules(self) -> list[Schedule]: ...
    def next_schedule_ms(self) -> int | None: ...
    def fire_schedules(self) -> list[tuple[str, str | None, str | None]]: ...

    # wakeups
    def notify(self) -> None: ...
    def listener(self, name: str) -> Listener | None: ...


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
    from queuectl.clock import SystemClock

    target = target or default_target()
    clock = clock or SystemClock()
    if target.startswith(("postgresql://", "postgres://")):
        from queuectl.store.postgres import PostgresStore

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
