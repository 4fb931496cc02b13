"""Queue: the Python API. The CLI and the HTTP API are thin layers over it."""

from __future__ import annotations

import builtins
import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from queuectl import config as config_keys
from queuectl.clock import Clock
from queuectl.durations import ms_to_iso, parse_duration
from queuectl.errors import InvalidInputError, NotFoundError
from queuectl.flow import parse_concurrency, parse_rate, rate_json, window_opens_at
from queuectl.models import (
    CANCELLED,
    COMPLETED,
    DEAD,
    FAILED,
    FINISHED_STATES,
    PROCESSING,
    STATES,
    Job,
    NewJob,
    new_job,
    validate_id,
)
from queuectl.store import (
    Attempt,
    Bucket,
    Hook,
    Output,
    QueueSettings,
    Runner,
    Schedule,
    Store,
    Totals,
    open_store,
)

if TYPE_CHECKING:
    from queuectl.runner.recovery import Recovered

MAX_ROW = 2**63 - 1  # both stores' row keys, LIMITs and OFFSETs are signed 64-bit
#: A limit `set_queue` leaves as it is (None removes one).
UNCHANGED: Any = object()


@dataclass(frozen=True)
class QueueFlow:
    """A queue's limits (None: none) against what runs and started now."""

    concurrency: int | None
    running: int
    rate_jobs: int | None
    started_in_window: int
    window_opens_at_ms: int | None


#: Jobs validated and inserted at a time by enqueue_stream: big enough for few round trips,
#: small enough that a stream of any length fits in a few megabytes.
STREAM_BATCH = 5000
#: Batches of this many jobs or more are enqueued with the garbage collector paused.
PAUSE_COLLECTOR_AT = 1000
#: `status` shows the progress of at most this many running jobs (the newest).
STATUS_PROGRESS_JOBS = 50
#: A stream (which pauses the collector) collects its young garbage after this many jobs: each
#: collection walks the batches still referenced, so now and then, not after every batch.
STREAM_COLLECT_EVERY = 10 * STREAM_BATCH


class Queue:
    """A queue on a store: `Queue("queue.db")`, `Queue("postgresql://...")`, or the default."""

    def __init__(self, target: str | None = None, clock: Clock | None = None) -> None:
        self._store: Store = open_store(target, clock)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- enqueue

    def enqueue(self, command: str, **options: Any) -> Job:
        """Enqueue one job; options are the job's JSON fields (see docs/json.md) and `delay`."""
        return self.enqueue_many([{"command": command, **options}])[0]

    def enqueue_many(self, jobs: Iterable[dict[str, Any] | NewJob]) -> list[Job]:
        """Enqueue every job in one transaction, or none if one is invalid."""
        cwd = os.getcwd()
        items = list(jobs)
        label = len(items) > 1
        with _collector_paused(len(items) >= PAUSE_COLLECTOR_AT):
            validated = [
                job if isinstance(job, NewJob) else new_job(job, f"job {n}" if label else "", cwd)
                for n, job in enumerate(items, 1)
            ]
            check_batch_order(validated)
            return self._store.enqueue_many(validated)

    def enqueue_stream(
        self,
        items: Iterable[tuple[str, dict[str, Any]]],
        each: Callable[[builtins.list[Job]], None],
    ) -> int:
        """Enqueue labelled jobs (("line 7", {...}), ...) in one transaction, or none if one is
        invalid (its error starts with its label): validated and inserted STREAM_BATCH at a
        time, so memory stays that of one batch however long the stream. `each` gets each
        batch's jobs before the commit; how many were enqueued."""
        cwd = os.getcwd()

        def batches() -> Iterator[builtins.list[tuple[str, NewJob]]]:
            batch: builtins.list[tuple[str, NewJob]] = []
            for n, (label, item) in enumerate(items, 1):
                batch.append((label, new_job(item, label, cwd)))
                if len(batch) == STREAM_BATCH:
                    yield batch
                    batch = []
                    if n % STREAM_COLLECT_EVERY == 0:
                        # With the collector paused, the cycles the caller's items or `each`
                        # may leave are collected here, so a stream of any length stays flat.
                        gc.collect(1)
            if batch:
                yield batch

        with _collector_paused(True):
            return self._store.enqueue_batches(batches(), each)

    # -- reading

    def report_progress(
        self, job_id: str, token: int, done: float, total: float, message: str | None = None
    ) -> bool:
        """Record the progress of the attempt of claim `token` (QUEUECTL_CLAIM_TOKEN in its
        environment); False, and nothing changed, unless it is the job's running attempt."""
        return self._store.save_progress(job_id, token, done, total, message)

    def get(self, job_id: str) -> Job:
        job = self._store.get(job_id)
        if job is None:
            raise NotFoundError(f"no job {job_id!r}")
        return job

    def resolve(self, ref: str) -> str:
        """The id a person means: the id itself, a unique prefix of one (as git and docker take
        them), or `@last` for the newest job of this store."""
        if ref == LAST:
            newest = self.list(limit=1)
            if not newest:
                raise NotFoundError("@last: this store holds no job yet")
            return newest[0].id
        validate_id(ref)
        if self._store.get(ref) is not None:
            return ref
        found = self._store.ids_with_prefix(ref, SHOWN_CANDIDATES + 1)
        if len(found) == 1:
            return found[0]
        if not found:
            raise NotFoundError(f"no job {ref!r}")
        more = " and more" if len(found) > SHOWN_CANDIDATES else ""
        raise InvalidInputError(
            f"{ref!r} starts more than one job id: "
            f"{', '.join(found[:SHOWN_CANDIDATES])}{more}; give more of it"
        )

    def explain(self, job_id: str) -> dict[str, Any]:
        """Why the job is or is not running now: {"id", "state", "reason", "message"}, as
        `queuectl explain --json`."""
        from queuectl.explain import explain_job

        return explain_job(self, job_id)

    def wait(self, *job_ids: str, timeout: float | None = None) -> builtins.list[Job]:
        """Block until every job named is finished (completed, dead or cancelled); the jobs,
        in the order named. TimeoutError after `timeout` seconds."""
        import time

        ids = [validate_id(job_id) for job_id in dict.fromkeys(job_ids)]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            jobs = [self.get(job_id) for job_id in ids]
            if all(job.state in FINISHED_STATES for job in jobs):
                return jobs
            if deadline is not None and time.monotonic() >= deadline:
                waiting = [job.id for job in jobs if job.state not in FINISHED_STATES]
                raise TimeoutError(f"still unfinished after {timeout:g}s: {', '.join(waiting)}")
            time.sleep(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))

    def find(self, job_id: str) -> Job | None:
        """The job, or None when there is none with that id."""
        return self._store.get(job_id)

    def dependencies(self, job_id: str) -> dict[str, str]:
        """The jobs a job still depends on, with their states: those its `depends_on` named
        that are still stored (one deleted since is no dependency any more, even if a new job
        took its id)."""
        return self._store.dependencies(job_id)

    def list(
        self,
        state: str | Sequence[str] | None = None,
        queue: str | Sequence[str] | None = None,
        limit: int | None = None,
    ) -> builtins.list[Job]:
        """Jobs, newest first, in any of the states and queues given (None: any)."""
        return self.page(state, queue, limit)[0]

    def page(
        self,
        state: str | Sequence[str] | None = None,
        queue: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> tuple[builtins.list[Job], str | None]:
        """A page of jobs, newest first, and the cursor of the next page (None at the end)."""
        # "running" is the word the dashboard and `worker list` use for processing jobs.
        states = [PROCESSING if n == "running" else n for n in _names(state) or ()] or None
        for name in states or ():
            if name not in STATES:
                raise InvalidInputError(f"state: {name!r} is not one of {', '.join(STATES)}")
        if limit is not None and limit < 0:
            raise InvalidInputError(f"limit: must be >= 0, got {limit}")
        if limit is not None and limit > MAX_ROW:
            raise InvalidInputError(f"limit: must be at most {MAX_ROW}, got {limit}")
        before = None
        if cursor:
            # isdigit() alone takes "²" and other Unicode digits; a store's keys are 64-bit.
            if not (cursor.isascii() and cursor.isdigit() and int(cursor) <= MAX_ROW):
                raise InvalidInputError(f"cursor: {cursor!r} is not a cursor from this API")
            before = int(cursor)
        page = self._store.list_jobs(states, _names(queue), limit, before)
        return page.jobs, None if page.next_before is None else str(page.next_before)

    def attempt_output(self, job_id: str, nth: int | None = None) -> Output:
        """What the job's last attempt wrote, as kept; with `nth`, the nth of all the attempts
        it ever made, oldest first (the same as its attempt number unless it was requeued)."""
        if nth is not None and nth < 1:
            raise InvalidInputError(f"attempt: must be at least 1, got {nth}")
        # No job makes 2**63 attempts, and the stores cannot count that far (an overflow).
        found = None if nth is not None and nth > MAX_ROW else self._store.output(job_id, nth)
        if found is None:
            job = self.get(job_id)
            if nth is not None:
                raise NotFoundError(f"job {job_id!r} has no attempt {nth}")
            return Output(job.attempts, b"", 0)
        return found

    def output(self, job_id: str, nth: int | None = None) -> bytes:
        """The output of the job's last attempt (or of its `nth`), with a marker line first
        when its start was dropped (b"" if it printed nothing or has not run)."""
        return self.attempt_output(job_id, nth).shown()

    def history(self, job_id: str) -> builtins.list[Attempt]:
        """Every attempt of the job, oldest first."""
        self.get(job_id)
        return self._store.history(job_id)

    def detail(self, job_id: str) -> dict[str, Any]:
        """The job as `show --json` gives it: every field and its history."""
        job = self.get(job_id)
        return {**job.to_dict(), "history": [attempt_dict(a) for a in self._store.history(job_id)]}

    def count(
        self, state: str | Sequence[str] | None = None, queue: str | Sequence[str] | None = None
    ) -> int:
        """How many jobs are in any of the states and queues given (None: any)."""
        states, queues = _names(state), _names(queue)
        return sum(
            number
            for name, per_state in self._store.counts().items()
            if queues is None or name in queues
            for in_state, number in per_state.items()
            if states is None or in_state in states
        )

    def status(self, since: str | float | None = None) -> dict[str, Any]:
        """Counts per state and queue, live runners, and jobs completed in the last minute;
        with `since` (a duration: "10m", or seconds), the jobs finished in that window by
        state."""
        window_s = None if since is None else parse_duration(since, "since")
        runners = [runner_dict(r) for r in self.runners()]
        per_queue = self._store.counts()
        counts = dict.fromkeys(STATES, 0)
        for states in per_queue.values():
            for state, count in states.items():
                counts[state] = counts.get(state, 0) + count
        queues = {
            name: {**dict.fromkeys(STATES, 0), **states} for name, states in per_queue.items()
        }
        return {
            "counts": counts,
            "queues": queues,
            "runners": runners,
            "done_last_minute": self.done_since(self.now_ms() - 60_000),
            "progress": self.running_progress(),
            **({} if window_s is None else {"since": self.finished_since(window_s)}),
        }

    def running_progress(self, limit: int = STATUS_PROGRESS_JOBS) -> builtins.list[dict[str, Any]]:
        """The running jobs that reported progress (of the `limit` newest running), each
        {"id", "queue", "progress"}."""
        return [
            {"id": job.id, "queue": job.queue, "progress": report}
            for job in self.list(PROCESSING, limit=limit)
            if (report := job.progress_dict()) is not None
        ]

    def finished_since(self, seconds: float) -> dict[str, Any]:
        """{"seconds", "completed", "dead", "cancelled"}: the jobs that finished in the last
        `seconds`, the window's start included."""
        start = self.now_ms() - round(seconds * 1000)
        shown = int(seconds) if float(seconds).is_integer() else seconds
        return {"seconds": shown, **self._store.finished_since(start)}

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue, then per state (states with no job are absent)."""
        return self._store.counts()

    def done_since(self, since_ms: int) -> int:
        """Jobs completed at or after the instant (epoch milliseconds)."""
        return self._store.done_since(since_ms)

    def finished_per_minute(self, since_ms: int) -> dict[int, dict[str, int]]:
        """Jobs whose last attempt ended since the instant: minute -> state -> count."""
        return self._store.finished_per_minute(since_ms)

    def attempts_by_queue(self) -> dict[str, dict[str, int]]:
        """Attempts started by the stored jobs, per queue, then per state."""
        return self._store.attempts_by_queue()

    def recent_durations(self, since_ms: int) -> dict[str, builtins.list[Bucket]]:
        """Durations of the attempts that ended since the instant's minute, per queue, in the
        buckets of DURATION_BOUNDS_MS."""
        return self._store.recent_durations(since_ms)

    def totals(self) -> Totals:
        """The counters that only go up (jobs enqueued, finished, attempts ended and their
        durations), per queue."""
        return self._store.totals()

    def oldest_due(self) -> dict[str, int]:
        """Per queue, the earliest run_at of the jobs that may start now."""
        return self._store.oldest_due(self.now_ms())

    def now_ms(self) -> int:
        """The store's clock (the database server's on PostgreSQL), epoch milliseconds."""
        return self._store.now()

    def describe(self) -> dict[str, Any]:
        """The store's kind, target (without secrets) and schema version."""
        return self._store.describe()

    def verify(self) -> None:
        """Check the store's structure; StoreError names the first problem."""
        self._store.verify()

    # -- changing jobs

    def cancel(self, *job_ids: str) -> builtins.list[Job]:
        """Cancel pending, failed or running jobs (all or none); a running process is killed."""
        return self._store.cancel([validate_id(job_id) for job_id in job_ids])

    def cancel_all(
        self, queue: str | None = None, progress: Callable[[int], None] | None = None
    ) -> int:
        """Cancel every pending, failed and running job of `queue` (None: of every queue), and
        their dependants, in batches that each commit (`progress` gets the jobs cancelled so far
        after each); how many were cancelled."""
        name = None if queue is None else validate_id(queue, "queue")
        return self._store.cancel_all(name, progress=progress)

    def retry(
        self,
        *job_ids: str,
        all: bool = False,
        queue: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[str]:
        """Move dead jobs back to pending with attempts reset (`all=True`: every dead job, of
        `queue` if given, in batches that each commit; `progress` gets the jobs retried so far
        after each)."""
        if all or queue is not None:
            if job_ids:
                raise InvalidInputError("name dead jobs or ask for all of them, not both")
            name = None if queue is None else validate_id(queue, "queue")
            return self._store.requeue(None, [DEAD], name, progress=progress)
        if not job_ids:
            raise InvalidInputError("name the dead jobs to retry, or use all")
        return self._store.requeue([validate_id(job_id) for job_id in job_ids], [DEAD])

    def requeue(self, *job_ids: str) -> builtins.list[str]:
        """Run completed, dead or cancelled jobs again from attempt 0, and failed ones waiting
        for their retry at once (from attempt 0 too); their history stays."""
        if not job_ids:
            raise InvalidInputError("name the jobs to run again")
        ids = [validate_id(job_id) for job_id in job_ids]
        return self._store.requeue(ids, [COMPLETED, DEAD, CANCELLED, FAILED])

    def purge(
        self,
        state: str,
        older_than: str | float = 0,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete finished jobs in `state` that finished more than `older_than` ago, in batches
        that each commit (`progress` gets the jobs deleted so far after each)."""
        states = purgeable_states(state)
        age_s = parse_duration(older_than, "older-than")
        cutoff = self.now_ms() - round(age_s * 1000)
        return self._store.purge(states, cutoff + (1 if age_s == 0 else 0), progress=progress)

    def reset(self, all: bool = False) -> dict[str, int]:
        """Delete every job with its history and output, in one transaction (`all`: also the
        schedules, hooks, queue settings and configuration). Refused while a runner is up.
        What was deleted: counts by kind."""
        self.recover()  # only a live runner refuses the reset; a dead one's jobs are deleted
        return self._store.reset(all)

    # -- configuration

    def config(self) -> dict[str, float]:
        return self._store.config()

    def get_config(self, key: str) -> float:
        return self._store.config()[config_keys.canonical_key(key)]

    def set_config(self, key: str, value: object) -> float:
        name, checked = config_keys.validate(key, value)
        self._store.set_config(name, checked)
        return checked

    # -- queues and runners

    def queues(self) -> dict[str, dict[str, Any]]:
        """Every named queue (with jobs, paused or limited): whether paused, its limits and its
        counts per state (as `queue list --json` gives them)."""
        settings = self._store.queue_settings()
        counts = self._store.counts()
        names = sorted(set(settings) | set(counts))
        none = QueueSettings(False, None, None, None, 0)
        return {
            name: {
                "paused": settings.get(name, none).paused,
                "concurrency": settings.get(name, none).concurrency,
                "rate": rate_json(
                    settings.get(name, none).rate_jobs, settings.get(name, none).rate_ms
                ),
                "counts": {**dict.fromkeys(STATES, 0), **counts.get(name, {})},
            }
            for name in names
        }

    def set_queue(
        self, name: str, concurrency: object = UNCHANGED, rate: object = UNCHANGED
    ) -> dict[str, Any]:
        """Set a queue's concurrency (N, or None: no limit) and rate ("N/DURATION", or None);
        a limit not given stays as it is. The queue need not have jobs yet. Its new entry of
        `queues()`."""
        validate_id(name, "queue")
        if concurrency is UNCHANGED and rate is UNCHANGED:
            raise InvalidInputError("give a concurrency, a rate, or both")
        limit = None if concurrency is UNCHANGED else parse_concurrency(concurrency)
        window = None if rate is UNCHANGED else parse_rate(rate)
        self._store.set_limits(
            name,
            limit,
            window,
            keep_concurrency=concurrency is UNCHANGED,
            keep_rate=rate is UNCHANGED,
        )
        return self.queues()[name]

    def queue_flow(self, name: str) -> QueueFlow:
        """A queue's limits and where it stands against them now (for `explain`)."""
        settings = self._store.queue_settings().get(name)
        if settings is None:
            return QueueFlow(None, 0, None, 0, None)
        opens_at = None
        started = 0
        if settings.rate_jobs is not None and settings.rate_ms is not None:
            starts = self._store.window_starts(name, self.now_ms() - settings.rate_ms)
            started = len(starts)
            opens_at = window_opens_at(starts, settings.rate_jobs, settings.rate_ms)
        return QueueFlow(
            settings.concurrency, settings.running, settings.rate_jobs, started, opens_at
        )

    def lock_holder(self, key: str) -> str | None:
        """The id of the running job that holds the lock, if any."""
        return self._store.lock_holder(key)

    def is_paused(self, queue: str) -> bool:
        return self._store.queues().get(queue, False)

    def pause(self, queue: str) -> None:
        self._store.set_paused(validate_id(queue, "queue"), True)

    def resume(self, queue: str) -> None:
        self._store.set_paused(validate_id(queue, "queue"), False)

    def runners(self) -> builtins.list[Runner]:
        """Live runners: those that look gone (see liveness.is_dead) are left out."""
        return self._runners(lost=False)

    def lost_runners(self) -> builtins.list[Runner]:
        """Registered runners that look gone: shown, not acted on (a runner or `recover` is)."""
        return self._runners(lost=True)

    def _runners(self, lost: bool) -> builtins.list[Runner]:
        if not (runners := self._store.runners()):
            return runners
        from queuectl.runner.liveness import is_dead  # the runner's modules: only with one up

        now_ms, lease_s = self.now_ms(), float(self._store.config()["lease_seconds"])
        return [r for r in runners if is_dead(r, now_ms, lease_s) == lost]

    def recover(self) -> Recovered:
        """What runners do as they run: kill what this host's gone runners left, unregister the
        runners that look gone, run their jobs (and expired leases') again as 'worker lost'."""
        from queuectl.runner.recovery import recover_now

        return recover_now(self._store)

    def request_stop(self) -> int:
        """Ask every runner of this store to stop gracefully; how many were asked."""
        return self._store.request_stop()

    def withdraw_stop(self) -> int:
        """Withdraw the stop asked of runners still draining (they take jobs again); how many."""
        return self._store.withdraw_stop()

    def unserved(self, names: Sequence[str]) -> dict[str, str]:
        """The queues of `names` no runner serves: {name: "none is up" or "stopping"}."""
        alive = self.runners()
        found = {}
        for name in sorted(set(names)):
            serving = [r for r in alive if r.queues is None or name in r.queues]
            if all(r.stop_requested for r in serving):  # none serving, or every one stopping
                found[name] = "stopping" if serving else "none is up"
        return found

    # -- schedules

    def add_schedule(
        self,
        name: str,
        job: dict[str, Any],
        cron: str | None = None,
        every: str | float | None = None,
        tz: str | None = None,
    ) -> Schedule:
        """Create (or replace) a schedule: one job per cron slot or per `every` interval."""
        from queuectl.schedule import next_slot_ms, validate_schedule

        name, cron, every_s, tz, template = validate_schedule(name, cron, every, tz, job)
        now = self.now_ms()
        schedule = Schedule(
            name=name,
            cron=cron,
            every_s=every_s,
            tz=tz,
            job=template,
            created_at_ms=now,
            last_at_ms=None,
            next_at_ms=next_slot_ms(cron, every_s, tz, now, now),
        )
        self._store.add_schedule(schedule)
        return schedule

    def remove_schedule(self, name: str) -> None:
        if not self._store.remove_schedule(name):
            raise NotFoundError(f"no schedule {name!r}")

    def schedules(self) -> builtins.list[Schedule]:
        return self._store.schedules()

    # -- hooks

    def add_hook(
        self, name: str, on: str | builtins.list[str], job: dict[str, Any], queue: str | None = None
    ) -> Hook:
        """Create (or replace) a hook: when a job (of `queue`, None: of any) reaches one of
        the events `on` ("completed,dead" or a list), `job` is enqueued with the event in its
        environment, in the same transaction."""
        from queuectl.hook import validate_hook

        name, events, queue, template = validate_hook(name, on, queue, job)
        hook = Hook(name, events, queue, template, self.now_ms())
        self._store.add_hook(hook)
        return hook

    def remove_hook(self, name: str) -> None:
        if not self._store.remove_hook(name):
            raise NotFoundError(f"no hook {name!r}")

    def hooks(self) -> builtins.list[Hook]:
        return self._store.hooks()


@contextmanager
def _collector_paused(paused: bool) -> Iterator[None]:
    """Python's cyclic garbage collector paused (if `paused`) while a bulk enqueue runs.

    A bulk enqueue keeps some ten new objects a job until it returns and makes no reference
    cycle: the collector would walk them again and again to free nothing. A collector paused
    already stays so; another thread's enqueue ending the pause early costs only time.
    """
    if not paused or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


#: The reference to the newest job of a store, wherever an id is taken on the command line.
LAST = "@last"
#: The candidates an ambiguous id prefix lists.
SHOWN_CANDIDATES = 5


def _names(value: str | Sequence[str] | None) -> builtins.list[str] | None:
    """One name or several as a list; None (any) for None or none given."""
    if value is None or isinstance(value, str):
        return None if value is None else [value]
    return list(value) or None


def check_batch_order(jobs: Sequence[NewJob]) -> None:
    """A job of a batch may depend on jobs before it, never after: so no cycle can form."""
    position: dict[str, int] = {}
    for n, job in enumerate(jobs):
        if job.id is not None:
            position.setdefault(job.id, n)
    for n, job in enumerate(jobs):
        for dep in job.depends_on:
            if position.get(dep, -1) > n:
                who = repr(job.id) if job.id is not None else f"number {n + 1}"
                raise InvalidInputError(
                    f"depends_on: job {who} depends on {dep!r}, which comes later in the batch; "
                    f"put a job after the jobs it depends on (dependencies cannot form a cycle)"
                )


def purgeable_states(state: str) -> list[str]:
    """The states a purge may delete: finished ones only."""
    if state not in FINISHED_STATES:
        raise InvalidInputError(
            f"state: only finished jobs can be purged "
            f"({', '.join(sorted(FINISHED_STATES))}), got {state!r}"
        )
    return [state]


def runner_dict(runner: Runner) -> dict[str, Any]:
    """A runner as `status --json` gives it."""
    return {
        "id": runner.id,
        "host": runner.host,
        "pid": runner.pid,
        "workers": runner.workers,
        "queues": runner.queues,
        "started_at": ms_to_iso(runner.started_at_ms),
        "heartbeat_at": ms_to_iso(runner.heartbeat_at_ms),
        "running": list(runner.running),
        "stopping": runner.stop_requested,
        "tags": list(runner.tags),
    }


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    """An attempt as a job's history entry in `show --json`."""
    return {
        "attempt": attempt.attempt,
        "runner": attempt.runner,
        "host": attempt.host,
        "started_at": ms_to_iso(attempt.started_at_ms),
        "finished_at": ms_to_iso(attempt.finished_at_ms),
        "exit_code": attempt.exit_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
    }


def schedule_dict(schedule: Schedule) -> dict[str, Any]:
    """A schedule as JSON (`schedule list --json`, the HTTP API)."""
    return {
        "name": schedule.name,
        "cron": schedule.cron,
        "every": schedule.every_s,
        "tz": schedule.tz,
        "job": schedule.job,
        "last_at": ms_to_iso(schedule.last_at_ms),
        "next_at": ms_to_iso(schedule.next_at_ms),
    }


def hook_dict(hook: Hook) -> dict[str, Any]:
    """A hook as JSON (`hook list --json`, the HTTP API)."""
    return {
        "name": hook.name,
        "on": list(hook.events),
        "queue": hook.queue,
        "job": hook.job,
        "created_at": ms_to_iso(hook.created_at_ms),
    }


def jobs_json(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    return [job.to_dict() for job in jobs]
