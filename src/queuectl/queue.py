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
    condition_met,
    new_job,
    parse_cpus,
    parse_max_procs,
    parse_memory,
    validate_id,
)
from queuectl.store import (
    Attempt,
    AuditEntry,
    Batch,
    Bucket,
    Hook,
    Output,
    QueueDefaults,
    QueueSettings,
    Runner,
    Schedule,
    Store,
    Token,
    Totals,
    open_store,
)
from queuectl.usage import Usage

if TYPE_CHECKING:
    from queuectl.runner.recovery import Recovered

MAX_ROW = 2**63 - 1  # both stores' row keys, LIMITs and OFFSETs are signed 64-bit
#: The roles of API tokens, each allowed what the one before it is, and more.
ROLES = ("read", "operate", "admin")
#: The start of every API token made by `add_token` (a secret scanner can know them by it).
TOKEN_PREFIX = "qct_"
#: What `bulk` may do to the jobs a filter matches.
BULK_ACTIONS = ("cancel", "retry", "hold", "release", "delete")
#: The jobs a search's page holds when no limit is given.
SEARCH_PAGE = 1000
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
    ) -> builtins.list[Job]:
        """Jobs, newest first, whose id starts with `text` or whose command or last error
        holds it (ASCII letters in any case), in any of the states and queues given; every
        match (None) or the newest `limit`."""
        if not text:
            raise InvalidInputError("search: give some text to look for")
        found: builtins.list[Job] = []
        cursor: str | None = None
        while limit is None or len(found) < limit:
            want = SEARCH_PAGE if limit is None else min(SEARCH_PAGE, limit - len(found))
            jobs, cursor = self.page(state, queue, want, cursor, search=text)
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
        if batch is not None:
            validate_id(batch, "batch")
        if search:
            if batch is not None:
                raise InvalidInputError("search: not within a batch yet; give one of them")
            page = self._store.search_jobs(
                search, states, _names(queue), SEARCH_PAGE if limit is None else limit, before
            )
            return page.jobs, None if page.next_before is None else str(page.next_before)
        if held:
            if batch is not None:
                raise InvalidInputError("held: not within a batch yet; give one of them")
            page = self._store.list_held(states, _names(queue), limit, before)
        else:
            page = self._store.list_jobs(states, _names(queue), limit, before, batch)
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
        """{"seconds", "completed", "dead", "cancelled", "cpu_seconds"}: the jobs that finished
        in the last `seconds`, the window's start included, and the CPU time of the attempts
        that ended in it (counted by the minute: from the start of the window's first)."""
        start = self.now_ms() - round(seconds * 1000)
        shown = int(seconds) if float(seconds).is_integer() else seconds
        cpu_seconds = self._store.cpu_since(start) / 1000
        return {"seconds": shown, **self._store.finished_since(start), "cpu_seconds": cpu_seconds}

    def usage_totals(self) -> builtins.list[Usage]:
        """What the attempts that ended cost, per queue and peak-memory bucket, since the store
        began (the counters of /metrics)."""
        return self._store.usage_totals()

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
        run_at, env (merged into the job's), timeout, max_retries, lock, depends_on, expires;
        a null timeout, lock or expires clears it). `by` is noted in the job's edits."""
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

    def bulk(
        self,
        action: str,
        state: str | Sequence[str] | None = None,
        queue: str | Sequence[str] | None = None,
        search: str | None = None,
        *,
        all: bool = False,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Cancel, retry, hold, release or delete (`action`) every job matching the filter
        (any of the states and queues, and `search` as in `search`), in batches that each
        commit; `progress(matched, changed)` after each. An empty filter needs `all=True`.
        {"matched", "changed"}: jobs whose state forbids the action are matched, not changed;
        `dry_run`: {"matched"} only, nothing changed."""
        if action not in BULK_ACTIONS:
            raise InvalidInputError(f"action: {action!r} is not one of {', '.join(BULK_ACTIONS)}")
        from queuectl.store.actions import BULK_ACTIONS as CHANGES

        if action not in CHANGES:
            raise InvalidInputError(f"action: {action} is not supported yet")
        states = [PROCESSING if n == "running" else n for n in _names(state) or ()] or None
        for name in states or ():
            if name not in STATES:
                raise InvalidInputError(f"state: {name!r} is not one of {', '.join(STATES)}")
        queues = [validate_id(name, "queue") for name in _names(queue) or ()] or None
        if not (states or queues or search) and not all:
            raise InvalidInputError(
                "filter: an empty filter matches every job; give a state, a queue or a search, "
                "or all: true"
            )
        if dry_run:
            if not search:
                return {"matched": self.count(states, queues)}
            return {"matched": self._store.bulk(None, states, queues, search)[0]}
        matched, changed = self._store.bulk(
            action, states, queues, search or None, progress=progress
        )
        return {"matched": matched, "changed": changed}

    def reset(self, all: bool = False) -> dict[str, int]:
        """Delete every job with its history and output, in one transaction (`all`: also the
        schedules, hooks, queue settings and configuration). Refused while a runner is up.
        What was deleted: counts by kind."""
        self.recover()  # only a live runner refuses the reset; a dead one's jobs are deleted
        return self._store.reset(all)

    # -- who may call the API, and what they did

    def add_token(self, name: str, role: str) -> str:
        """Make an API token with a role (read, operate, admin); the token, which only its
        digest is stored of: shown once."""
        import hashlib
        import secrets

        validate_id(name, "name")
        if role not in ROLES:
            raise InvalidInputError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._store.add_token(name, role, hashlib.sha256(secret.encode()).hexdigest())
        return secret

    def tokens(self) -> builtins.list[Token]:
        return self._store.tokens()

    def revoke_token(self, name: str) -> None:
        if not self._store.revoke_token(name):
            raise NotFoundError(f"no token {name!r}")

    def token_role(self, secret: str) -> tuple[str, str] | None:
        """The name and role of an API token, if it is one."""
        import hashlib

        return self._store.token_role(hashlib.sha256(secret.encode()).hexdigest())

    def record_audit(self, entry: AuditEntry) -> None:
        self._store.record_audit(entry)

    def audit(
        self, since: str | float | None = None, limit: int = 1000
    ) -> builtins.list[AuditEntry]:
        """The audit's entries, newest first: of the last `since` (a duration), or all kept."""
        since_ms = 0
        if since is not None:
            since_ms = self.now_ms() - round(parse_duration(since, "since") * 1000)
        return self._store.audit(since_ms, limit)

    def expire_audit(self, older_than: str | float | None = None) -> int:
        """Delete the audit's entries older than `older_than` (default: `retain_audit`; 0
        keeps them all); how many."""
        keep_s = parse_duration(
            self.get_config("retain_audit") if older_than is None else older_than, "older-than"
        )
        if keep_s <= 0:
            return 0
        before = self.now_ms() - round(keep_s * 1000)
        done = 0
        while (deleted := self._store.expire_audit(before, 1000)) > 0:
            done += deleted
        return done

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
        defaults = self._store.queue_defaults()
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
                "memory": settings.get(name, none).memory,
                "cpus": settings.get(name, none).cpus,
                "max_procs": settings.get(name, none).max_procs,
                # Only queues with defaults carry them, so others keep their documented shape.
                **({"defaults": _defaults_json(defaults[name])} if name in defaults else {}),
            }
            for name in names
        }

    def set_queue(
        self,
        name: str,
        concurrency: object = UNCHANGED,
        rate: object = UNCHANGED,
        memory: object = UNCHANGED,
        cpus: object = UNCHANGED,
        max_procs: object = UNCHANGED,
    ) -> dict[str, Any]:
        """Set a queue's concurrency (N, or None: no limit) and rate ("N/DURATION", or None),
        and its jobs' default limits (memory, cpus, max_procs: a value, or None/"none": no
        default); what is not given stays as it is. The queue need not have jobs yet. Its new
        entry of `queues()`."""
        validate_id(name, "queue")
        defaults = {"memory": memory, "cpus": cpus, "max_procs": max_procs}
        given = {key: value for key, value in defaults.items() if value is not UNCHANGED}
        if concurrency is UNCHANGED and rate is UNCHANGED and not given:
            raise InvalidInputError("give a concurrency, a rate, or a default limit")
        parsers = {"memory": parse_memory, "cpus": parse_cpus, "max_procs": parse_max_procs}
        values = {
            key: None if value is None or value == "none" else parsers[key](value)
            for key, value in given.items()
        }
        limit = None if concurrency is UNCHANGED else parse_concurrency(concurrency)
        window = None if rate is UNCHANGED else parse_rate(rate)
        if concurrency is not UNCHANGED or rate is not UNCHANGED:
            self._store.set_limits(
                name,
                limit,
                window,
                keep_concurrency=concurrency is UNCHANGED,
                keep_rate=rate is UNCHANGED,
            )
        if values:
            self._store.set_job_defaults(name, values)
        return self.queues()[name]

    def job_limits(self, job: Job) -> dict[str, Any]:
        """The limits a job runs under, by name: its own, else its queue's defaults."""
        settings = self._store.queue_settings().get(job.queue)
        found = {}
        for name in ("memory", "cpus", "max_procs"):
            value = getattr(job, name)
            if value is None and settings is not None:
                value = getattr(settings, name)
            if value is not None:
                found[name] = value
        return found

    def set_queue_defaults(
        self, name: str, timeout: object = UNCHANGED, max_retries: object = UNCHANGED
    ) -> dict[str, Any]:
        """Set a queue's defaults for its jobs that set none of their own: `timeout` (a
        duration; "none" or None: no default) and `max_retries` (N; "none" or None: no
        default); one not given stays. Runners apply them to every attempt they start from
        then on, of jobs already waiting too. Its new entry of `queues()`."""
        validate_id(name, "queue")
        if timeout is UNCHANGED and max_retries is UNCHANGED:
            raise InvalidInputError("give a timeout, max_retries, or both")
        seconds = None
        if timeout is not UNCHANGED and timeout not in (None, "none"):
            seconds = parse_duration(timeout, "timeout")  # type: ignore[arg-type]
        retries = None
        if max_retries is not UNCHANGED and max_retries not in (None, "none"):
            retries = new_job({"command": "true", "max_retries": max_retries}).max_retries
        self._store.set_queue_defaults(
            name,
            seconds,
            retries,
            keep_timeout=timeout is UNCHANGED,
            keep_max_retries=max_retries is UNCHANGED,
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
        "enforces": list(runner.enforces),
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
        "cpu_ms": attempt.cpu_ms,
        "max_rss_bytes": attempt.max_rss_bytes,
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


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON (`audit --json`, the HTTP API)."""
    return {
        "at": ms_to_iso(entry.at_ms),
        "token": entry.token,
        "client": entry.client,
        "method": entry.method,
        "route": entry.route,
        "target": entry.target,
        "status": entry.status,
    }


def token_dict(token: Token) -> dict[str, Any]:
    """A token as `token list --json` shows it (never the token itself)."""
    return {"name": token.name, "role": token.role, "created_at": ms_to_iso(token.created_at_ms)}


def batch_dict(batch: Batch, now_ms: int) -> dict[str, Any]:
    """A batch's JSON: counts by state, done of total, first start, last end, and while it
    runs an estimate of the seconds left, from its pace since its first start."""
    counts = {state: batch.counts.get(state, 0) for state in STATES}
    total = sum(counts.values())
    done = sum(counts[state] for state in FINISHED_STATES)
    finished = total > 0 and done == total
    eta_s: float | None = None
    if not finished and done and batch.started_at_ms is not None and now_ms > batch.started_at_ms:
        eta_s = round((total - done) * (now_ms - batch.started_at_ms) / done / 1000, 1)
    return {
        "name": batch.name,
        "total": total,
        "done": done,
        "counts": counts,
        "finished": finished,
        "completed": finished and counts[COMPLETED] == total,
        "concurrency": batch.concurrency,
        "created_at": ms_to_iso(batch.created_at_ms),
        "first_start": ms_to_iso(batch.started_at_ms),
        "last_end": ms_to_iso(batch.ended_at_ms),
        "eta_s": eta_s,
    }


def jobs_json(jobs: Sequence[Job]) -> list[dict[str, Any]]:
    return [job.to_dict() for job in jobs]


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
    }
)

#: What a null clears in `edit`.
CLEARABLE = frozenset({"timeout", "lock", "expires"})


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return f"uid {os.getuid()}"


def _defaults_json(defaults: QueueDefaults) -> dict[str, Any]:
    return {"timeout": defaults.timeout, "max_retries": defaults.max_retries}
