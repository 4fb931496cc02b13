"""Queue: the Python API. The CLI and the HTTP API are thin layers over it."""

from __future__ import annotations

import builtins
import functools
import gc
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from queuectl.admin import Admin
from queuectl.clock import Clock
from queuectl.errors import InvalidInputError, NotFoundError
from queuectl.flow import parse_concurrency
from queuectl.models import (
    CANCELLED,
    COMPLETED,
    DEAD,
    FAILED,
    FINISHED_STATES,
    Job,
    NewJob,
    condition_met,
    name_list,
    new_job,
    parse_states,
    validate_id,
    validate_search,
)
from queuectl.shapes import attempt_dict, batch_dict
from queuectl.store import Attempt, JobFilter, Output, Store, open_store

P = ParamSpec("P")
R = TypeVar("R")

MAX_ROW = 2**63 - 1  # both stores' row keys, LIMITs and OFFSETs are signed 64-bit
#: The jobs a search's page holds when no limit is given.
SEARCH_PAGE = 1000
#: Jobs validated and inserted at a time by enqueue_stream: big enough for few round trips,
#: small enough that a stream of any length fits in a few megabytes.
STREAM_BATCH = 5000
#: Batches of this many jobs or more are enqueued with the garbage collector paused.
PAUSE_COLLECTOR_AT = 1000
#: A stream (which pauses the collector) collects its young garbage after this many jobs: each
#: collection walks the batches still referenced, so now and then, not after every batch.
STREAM_COLLECT_EVERY = 10 * STREAM_BATCH


def delegated(method: Callable[Concatenate[Admin, P], R]) -> Callable[Concatenate[Queue, P], R]:
    """Admin's `method` as a method of Queue, with its signature and docstring."""

    @functools.wraps(method)
    def call(queue: Queue, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(queue._admin, *args, **kwargs)

    return call


class Queue:
    """A queue on a store: `Queue("queue.db")`, `Queue("postgresql://...")`, or the default.

    Its jobs' half is written here; its operators' half (status, queues, runners, schedules,
    hooks, tokens, purge, bulk, reset) in `Admin`, whose methods it offers as its own."""

    def __init__(self, target: str | None = None, clock: Clock | None = None) -> None:
        self._store: Store = open_store(target, clock)
        self._admin = Admin(self._store)

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

    def enqueue_array(
        self,
        spec: str,
        job: dict[str, Any],
        each: Callable[[builtins.list[Job]], None] | None = None,
    ) -> tuple[str, int]:
        """Enqueue one job per index of an array SPEC (`1-100`, `0-98:2`, `1,5,9`, `%N`) in
        one transaction: ids BASE.INDEX (BASE: the job's id, else a new one), each with
        QUEUECTL_ARRAY_INDEX in its environment, all in the batch BASE, whose concurrency
        limit `%N` sets. The batch's name and how many jobs were enqueued; `each` gets each
        batch of jobs before the commit."""
        import dataclasses

        from queuectl.arrays import parse_array
        from queuectl.store.rows import new_id

        array = parse_array(spec)
        if job.get("batch") is not None:
            raise InvalidInputError("an array is a batch of its own, named by its id: no batch")
        template = new_job({**job, "id": None})
        base = validate_id(job["id"]) if job.get("id") is not None else new_id()
        if len(base) + 1 + len(str(max(stop for _, stop, _ in array.ranges))) > 128:
            raise InvalidInputError(f"id: {base!r} is too long for the ids of its array")
        template.batch = base
        template.batch_limit = array.limit

        def batches() -> Iterator[builtins.list[tuple[str, NewJob]]]:
            batch: builtins.list[tuple[str, NewJob]] = []
            # copy.copy's generic path would cost more than the insert: the fields, passed on
            fields = {f.name: getattr(template, f.name) for f in dataclasses.fields(NewJob)}
            env = template.env
            for index in array.indices():
                fields["id"] = f"{base}.{index}"
                fields["env"] = {**env, "QUEUECTL_ARRAY_INDEX": str(index)}
                batch.append(("", NewJob(**fields)))
                if len(batch) == STREAM_BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch

        with _collector_paused(True):
            count = self._store.enqueue_batches(batches(), each or (lambda jobs: None))
        return base, count

    # -- batches

    def batches(self) -> builtins.list[dict[str, Any]]:
        """Every batch, oldest first, as `batch list --json` shows them."""
        now = self.now_ms()
        return [batch_dict(batch, now) for batch in self._store.batches()]

    def batch(self, name: str) -> dict[str, Any]:
        """One batch's progress (as `batch show --json`, without its jobs)."""
        found = self._store.batches(validate_id(name, "batch"))
        if not found:
            raise NotFoundError(f"no batch {name!r}")
        return batch_dict(found[0], self.now_ms())

    def set_batch(self, name: str, concurrency: object) -> None:
        """Set a batch's concurrency limit (None or "none": no limit)."""
        limit = parse_concurrency(concurrency)
        if not self._store.set_batch_limit(validate_id(name, "batch"), limit):
            raise NotFoundError(f"no batch {name!r}")

    def wait_batch(self, name: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until every job of the batch is finished; the batch (`completed`: whether
        every job completed). TimeoutError after `timeout` seconds."""
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            batch = self.batch(name)
            if batch["finished"]:
                return batch
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(
                    f"batch {name}: {batch['done']} of {batch['total']} finished after {timeout:g}s"
                )
            time.sleep(0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic())))

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

    def conditions(self, job_id: str) -> builtins.list[dict[str, Any]]:
        """Each dependency a job has, with its condition, its state and whether the condition
        is met (None: not yet); then each batch it waits for (`after_batch`)."""
        job = self.get(job_id)
        states = self._store.dependencies(job.id) if job.depends_on else {}
        conditions = self._store.conditions(job.id) if job.depends_on else {}
        found: builtins.list[dict[str, Any]] = []
        for dep in job.depends_on:
            on = conditions.get(dep, COMPLETED)
            state = states.get(dep)
            met = None if state is None else condition_met(on, state)
            found.append({"id": dep, "on": on, "state": state or "deleted", "met": met})
        for name in self._store.batch_waits(job.id):
            got = self._store.batches(name)
            progress = batch_dict(got[0], self.now_ms()) if got else None
            done = (
                "deleted"
                if progress is None
                else f"{progress['done']}/{progress['total']} finished"
            )
            found.append({"batch": name, "on": COMPLETED, "state": done, "met": None})
        return found

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
        batch: str | None = None,
        held: bool = False,
    ) -> builtins.list[Job]:
        """Jobs, newest first, in any of the states and queues given (None: any), of `batch`
        if given; `held`: only held ones."""
        return self.page(state, queue, limit, batch=batch, held=held)[0]

    def search(
        self,
        text: str,
        state: str | Sequence[str] | None = None,
        queue: str | Sequence[str] | None = None,
        limit: int | None = None,
        batch: str | None = None,
        held: bool = False,
    ) -> builtins.list[Job]:
        """Jobs, newest first, whose id starts with `text` or whose command or last error
        holds it (ASCII letters in any case), in any of the states and queues given, of
        `batch` if given, only held ones if `held`; every match (None) or the newest
        `limit`."""
        if not text:
            raise InvalidInputError("search: give some text to look for")
        found: builtins.list[Job] = []
        cursor: str | None = None
        while limit is None or len(found) < limit:
            want = SEARCH_PAGE if limit is None else min(SEARCH_PAGE, limit - len(found))
            jobs, cursor = self.page(
                state, queue, want, cursor, search=text, batch=batch, held=held
            )
            found.extend(jobs)
            if cursor is None:
                break
        return found

    def page(
        self,
        state: str | Sequence[str] | None = None,
        queue: str | Sequence[str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        search: str | None = None,
        batch: str | None = None,
        held: bool = False,
    ) -> tuple[builtins.list[Job], str | None]:
        """A page of jobs, newest first, and the cursor of the next page (None at the end).
        `search`: only jobs whose id starts with it or whose command or last error holds it;
        a search reads a bounded window of jobs, so its page may be short (even empty) and
        still have a next cursor."""
        # "running" is the word the dashboard and `worker list` use for processing jobs.
        states = parse_states(state)
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
        if batch is not None:
            validate_id(batch, "batch")
        text = validate_search(search) if search else None
        where = JobFilter(states, name_list(queue), text, batch, held)
        if text:
            page = self._store.search_jobs(where, SEARCH_PAGE if limit is None else limit, before)
        else:
            page = self._store.list_jobs(where, limit, before)
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

    def hold(self, *job_ids: str) -> builtins.list[Job]:
        """Hold waiting jobs (all or none; one running or finished is a WrongStateError): no
        runner takes them until released."""
        return self._store.hold([validate_id(job_id) for job_id in job_ids])

    def release(self, *job_ids: str) -> builtins.list[Job]:
        """Release held jobs (all or none)."""
        return self._store.release_held([validate_id(job_id) for job_id in job_ids])

    def edit(self, job_id: str, *, by: str | None = None, **fields: Any) -> Job:
        """Change a pending or failed job, atomically against runners (WrongStateError if it is
        running or finished): `fields` as enqueue's JSON (command, priority, queue, delay or
        run_at, env (merged into the job's), timeout, max_retries, lock, depends_on, expires,
        memory, cpus, max_procs; a null timeout, lock, expires or limit clears it). `by` is
        noted in the job's edits."""
        unknown = sorted(set(fields) - EDITABLE)
        if unknown:
            raise InvalidInputError(f"{unknown[0]!r} cannot be edited")
        if not fields:
            raise InvalidInputError("nothing to change")
        # Only these clear with a null; the others keep what the job has.
        fields = {k: v for k, v in fields.items() if v is not None or k in CLEARABLE}
        if not fields:
            raise InvalidInputError("nothing to change")
        job = new_job({"command": "true", **fields})
        return self._store.edit(validate_id(job_id), job, list(fields), by or _user())

    def hold_queue(self, queue: str) -> int:
        """Hold every pending or failed job of a queue; how many were held."""
        return self._store.hold_queue(validate_id(queue, "queue"))

    def hold_batch(self, batch: str) -> int:
        """Hold every pending or failed job of a batch; how many were held."""
        self.batch(batch)  # no such batch: refused, not "none held"
        return self._store.hold_batch(batch)

    def release_batch(self, batch: str) -> int:
        """Release every held job of a batch; how many were released."""
        self.batch(batch)
        return self._store.release_batch(batch)

    def release_queue(self, queue: str) -> int:
        """Release every held job of a queue; how many were released."""
        return self._store.release_queue(validate_id(queue, "queue"))

    def cancel_all(
        self,
        queue: str | None = None,
        progress: Callable[[int], None] | None = None,
        batch: str | None = None,
    ) -> int:
        """Cancel every pending, failed and running job of `queue` (None: of every queue; of
        `batch` if given), and their dependants, in batches that each commit (`progress` gets
        the jobs cancelled so far after each); how many were cancelled."""
        name = None if queue is None else validate_id(queue, "queue")
        if batch is not None:
            if queue is not None:
                raise InvalidInputError("give a queue or a batch, not both")
            self.batch(batch)  # no such batch: refused, not "nothing to cancel"
        return self._store.cancel_all(name, progress=progress, in_batch=batch)

    def retry(
        self,
        *job_ids: str,
        all: bool = False,
        queue: str | None = None,
        progress: Callable[[int], None] | None = None,
        batch: str | None = None,
    ) -> builtins.list[str]:
        """Move dead jobs back to pending with attempts reset (`all=True`: every dead job, of
        `queue` if given, in batches that each commit; `progress` gets the jobs retried so far
        after each; `batch`: every dead job of that batch)."""
        if batch is not None:
            if job_ids or queue is not None:
                raise InvalidInputError("give dead jobs, a queue or a batch, not several")
            self.batch(batch)
            return self._store.requeue(None, [DEAD], None, progress=progress, in_batch=batch)
        if all or queue is not None:
            if job_ids:
                raise InvalidInputError("name dead jobs or ask for all of them, not both")
            name = None if queue is None else validate_id(queue, "queue")
            return self._store.requeue(None, [DEAD], name, progress=progress)
        if not job_ids:
            raise InvalidInputError("name the dead jobs to retry, or use all")
        return self._store.requeue([validate_id(job_id) for job_id in job_ids], [DEAD])

    def requeue(
        self,
        *job_ids: str,
        batch: str | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> builtins.list[str]:
        """Run completed, dead or cancelled jobs again from attempt 0, and failed ones waiting
        for their retry at once (from attempt 0 too); their history stays. `batch`: every
        such job of that batch, in batches that each commit."""
        if batch is not None:
            if job_ids:
                raise InvalidInputError("name jobs or a batch, not both")
            self.batch(batch)
            states = [COMPLETED, DEAD, CANCELLED, FAILED]
            return self._store.requeue(None, states, None, progress=progress, in_batch=batch)
        if not job_ids:
            raise InvalidInputError("name the jobs to run again")
        ids = [validate_id(job_id) for job_id in job_ids]
        return self._store.requeue(ids, [COMPLETED, DEAD, CANCELLED, FAILED])

    # -- the operators' half, written in admin.py

    # what status and /metrics count
    count = delegated(Admin.count)
    status = delegated(Admin.status)
    running_progress = delegated(Admin.running_progress)
    finished_since = delegated(Admin.finished_since)
    usage_totals = delegated(Admin.usage_totals)
    counts = delegated(Admin.counts)
    done_since = delegated(Admin.done_since)
    finished_per_minute = delegated(Admin.finished_per_minute)
    attempts_by_queue = delegated(Admin.attempts_by_queue)
    recent_durations = delegated(Admin.recent_durations)
    totals = delegated(Admin.totals)
    oldest_due = delegated(Admin.oldest_due)

    # configuration
    config = delegated(Admin.config)
    get_config = delegated(Admin.get_config)
    set_config = delegated(Admin.set_config)

    # queues
    queues = delegated(Admin.queues)
    set_queue = delegated(Admin.set_queue)
    job_limits = delegated(Admin.job_limits)
    set_queue_defaults = delegated(Admin.set_queue_defaults)
    queue_flow = delegated(Admin.queue_flow)
    lock_holder = delegated(Admin.lock_holder)
    is_paused = delegated(Admin.is_paused)
    pause = delegated(Admin.pause)
    resume = delegated(Admin.resume)

    # runners
    runners = delegated(Admin.runners)
    lost_runners = delegated(Admin.lost_runners)
    recover = delegated(Admin.recover)
    request_stop = delegated(Admin.request_stop)
    withdraw_stop = delegated(Admin.withdraw_stop)
    unserved = delegated(Admin.unserved)

    # schedules
    add_schedule = delegated(Admin.add_schedule)
    remove_schedule = delegated(Admin.remove_schedule)
    schedules = delegated(Admin.schedules)

    # hooks
    add_hook = delegated(Admin.add_hook)
    remove_hook = delegated(Admin.remove_hook)
    hooks = delegated(Admin.hooks)

    # who may call the HTTP API, and what they did
    add_token = delegated(Admin.add_token)
    tokens = delegated(Admin.tokens)
    revoke_token = delegated(Admin.revoke_token)
    token_role = delegated(Admin.token_role)
    record_audit = delegated(Admin.record_audit)
    audit = delegated(Admin.audit)
    expire_audit = delegated(Admin.expire_audit)

    # many jobs at once, and the whole store
    purge = delegated(Admin.purge)
    bulk = delegated(Admin.bulk)
    reset = delegated(Admin.reset)


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


#: What `edit` may change: NewJob's input fields that a waiting job may still take.
EDITABLE = frozenset(
    {
        "command",
        "priority",
        "queue",
        "delay",
        "run_at",
        "env",
        "timeout",
        "max_retries",
        "lock",
        "depends_on",
        "expires",
        "memory",
        "cpus",
        "max_procs",
    }
)

#: What a null clears in `edit`.
CLEARABLE = frozenset({"timeout", "lock", "expires", "memory", "cpus", "max_procs"})


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"
