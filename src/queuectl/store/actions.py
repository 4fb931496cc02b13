"""Lifecycle actions on stored jobs: cancel, requeue, purge, one at a time or in batches a
transaction each."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from queuectl.errors import ConflictError, NotFoundError, WrongStateError
from queuectl.models import (
    CANCELLABLE_STATES,
    CANCELLED,
    COMPLETED,
    DEAD,
    FAILED,
    FINISHED_STATES,
    PENDING,
    PROCESSING,
    Job,
    condition_met,
)
from queuectl.store import rows as rows_
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.enqueue import Enqueue
from queuectl.store.hooks import Hooks
from queuectl.store.reads import contains_pattern
from queuectl.store.records import BULK_BATCH, JobFilter
from queuectl.store.settle import Settle, batch_ends

#: The states in which each action of `bulk` changes a job; others are matched, not changed.
BULK_ACTIONS: dict[str, frozenset[str]] = {
    "cancel": CANCELLABLE_STATES,
    "retry": frozenset({COMPLETED, DEAD, CANCELLED, FAILED}),
    "hold": frozenset({PENDING, FAILED}),
    "release": frozenset({PENDING, FAILED}),
    "delete": FINISHED_STATES,
}
#: Jobs `bulk` changes per transaction at most: half of BULK_BATCH, since each of its batches
#: reads and writes whole jobs, whatever their state.
FILTER_BATCH = BULK_BATCH // 2
#: How long one transaction of a bulk change aims to take: its batches are sized from how long
#: the last ones took, so that the write lock (all of SQLite's; the rows and the counters on
#: PostgreSQL) is never held long, whatever a job costs to change and however loaded the host.
BULK_HOLD_S = 0.04
#: The size of a bulk change's first batch: small, since nothing is known yet of what one job
#: costs; the next ones at most double.
BULK_FIRST = 50
#: The jobs (by seq) one statement of a bulk change's search reads at most while it looks for
#: the next matches: a filter that matches few of many jobs is read a window at a time.
BULK_WINDOW = 100_000


def filter_params(where: JobFilter, db: Dialect) -> dict[str, Any]:
    """The parameters of the statements that find a bulk change's jobs."""
    return {
        "states": None if not where.states else db.array(where.states),
        "queues": None if not where.queues else db.array(where.queues),
        "text": where.text or None,
        "pattern": contains_pattern(where.text or ""),
        "in_batch": where.batch,
        "held": where.held,
    }


@dataclass(frozen=True, slots=True)
class Step:
    """One batch of a bulk change's walk (see Actions._bulk): at most `size` jobs in `state`
    after the cursor `after` (a seq) up to `upto`, of `queue` (None: of every queue), or of
    the batch `in_batch` if given (the queue is not looked at then)."""

    state: str
    queue: str | None
    in_batch: str | None
    after: int
    upto: int
    size: int


class Pacer:
    """The sizes of a bulk change's batches, from how long its transactions took: each aims at
    `target_s` (a batch is sized from the time per job of the last one), starts at `first`
    jobs, at most doubles from one batch to the next, and never exceeds `most`."""

    def __init__(
        self,
        most: int,
        target_s: float = BULK_HOLD_S,
        first: int = BULK_FIRST,
    ) -> None:
        self.most, self.target_s = max(1, most), target_s
        self.size = max(1, min(first, self.most))

    def took(self, jobs: int, seconds: float) -> None:
        """A transaction of `jobs` jobs took `seconds`: the next batch's size follows."""
        if jobs <= 0:
            return
        fits = int(self.target_s * jobs / max(seconds, 1e-6))
        self.size = max(1, min(self.most, 2 * self.size, fits))


class Actions(Flow):
    """Cancel, requeue and purge."""

    def __init__(self, db: Dialect, enqueue: Enqueue, settle: Settle, hooks: Hooks) -> None:
        super().__init__(db)
        self.enqueue, self.settle, self.hooks = enqueue, settle, hooks
        self._held = threading.local()

    @contextmanager
    def _timed(self) -> Iterator[Any]:
        """A write transaction of a bulk change; how long it held the write lock (from taking
        it to the commit, not the wait for it) is then `held_s()`."""
        with self.db.transaction() as conn:
            started = time.monotonic()
            yield conn
        self._held.s = time.monotonic() - started

    def held_s(self) -> float:
        """How long this thread's last transaction of a bulk change held the write lock."""
        return float(getattr(self._held, "s", 0.0))

    @operation(replayable=False)
    def cancel(self, job_ids: Sequence[str]) -> list[Job]:
        now = self.db.now()
        with self.db.transaction() as conn:
            locked = conn.execute(self.db.q["locked_jobs"], (self.db.array(job_ids),)).fetchall()
            rows = {row["id"]: row for row in locked}
            for job_id in job_ids:  # all or nothing
                if job_id not in rows:
                    raise NotFoundError(f"no job {job_id!r}")
                _check_cancellable(job_id, rows[job_id]["state"])
            cancelled, _ = self._cancel_rows(conn, locked, now)
        return [
            rows_.job(rows[job_id], self.db.from_json)
            for job_id in dict.fromkeys(job_ids)
            if job_id in cancelled
        ]

    def cancel_all(
        self,
        queue: str | None = None,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
        in_batch: str | None = None,
    ) -> int:
        states = sorted(CANCELLABLE_STATES)
        return self._bulk(states, queue, in_batch, batch, self._cancel_batch, progress)

    @operation()
    def _cancel_batch(self, step: Step) -> tuple[int, int, int]:
        """One batch of cancel_all, in a transaction of its own (see _bulk)."""
        now = self.db.now()
        with self._timed() as conn:
            ids, after = self._bulk_ids(conn, step)
            if not ids:
                return 0, after, 0
            locked = conn.execute(self.db.q["locked_jobs"], (self.db.array(ids),)).fetchall()
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
            params = {"ids": self.db.array(waiting), "now": now}
            cancelled.update(r["id"] for r in conn.execute(self.db.q["cancel_waiting"], params))
        for row in rows:  # running ones: a few at most, one per busy worker
            job_id = row["id"]
            if row["state"] != PROCESSING:
                continue
            if conn.execute(self.db.q["cancel_job"], {"id": job_id, "now": now}).rowcount:
                conn.execute(self.db.q["close_attempt"], {"id": job_id, "now": now})
                cancelled.add(job_id)
        if not cancelled:
            return cancelled, 0
        cascaded = self.settle.cascade(conn, cancelled, CANCELLED, now)
        if self.hooks.any(conn):
            self.hooks.fire_cancelled(
                conn, [r for r in rows if r["id"] in cancelled], cascaded, now
            )
        ended = [(r["batch"], r["id"], r["queue"]) for r in rows if r["id"] in cancelled]
        self.settle.finish_batches(
            conn, [e for e in ended if e[0] is not None] + batch_ends(cascaded), now
        )
        self.db.wake(conn)  # runners kill what was cancelled
        return cancelled, len(cascaded)

    @operation(replayable=False)
    def requeue(
        self,
        job_ids: Sequence[str] | None,
        states: Sequence[str],
        queue: str | None = None,
        batch: int = BULK_BATCH,
        progress: Callable[[int], None] | None = None,
        in_batch: str | None = None,
    ) -> list[str]:
        if job_ids is None:
            done: list[str] = []

            def requeue_batch(step: Step) -> tuple[int, int, int]:
                found, after, requeued = self._requeue_batch(states, step)
                done.extend(requeued)
                return found, after, len(requeued)

            self._bulk(states, queue, in_batch, batch, requeue_batch, progress)
            return done
        with self.db.transaction() as conn:
            found = {job.id: job for job in self.enqueue.jobs_by_ids(conn, job_ids)}
            for job_id in job_ids:
                if job_id not in found:
                    raise NotFoundError(f"no job {job_id!r}")
                if found[job_id].state not in states:
                    raise WrongStateError(
                        f"job {job_id!r} is {found[job_id].state}, not {' or '.join(states)}"
                    )
            return self._requeue_jobs(conn, [found[i] for i in dict.fromkeys(job_ids)], states)

    @operation(replayable=False)
    def _requeue_batch(self, states: Sequence[str], step: Step) -> tuple[int, int, list[str]]:
        """One batch of a bulk requeue, in a transaction of its own (see _bulk)."""
        with self._timed() as conn:
            ids, after = self._bulk_ids(conn, step)
            if not ids:
                return 0, after, []
            jobs = [job for job in self.enqueue.jobs_by_ids(conn, ids) if job.state in states]
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
        params = {"now": self.db.now(), "states": self.db.array(states)}
        wanted = {job.id: waiting.get(job.id, 0) for job in jobs}
        conn.execute(self.db.q["savepoint"])
        try:
            rows = conn.execute(self.db.q["requeue"], {**params, "jobs": self.db.json(wanted)})
            changed = {row["id"] for row in rows.fetchall()}
        except self.db.unique_violation:
            conn.execute(self.db.q["rollback_savepoint"])
            refused: set[str] = set()
            for job_id, count in wanted.items():  # which ones, one after the other
                conn.execute(self.db.q["savepoint"])
                try:
                    conn.execute(
                        self.db.q["requeue"], {**params, "jobs": self.db.json({job_id: count})}
                    )
                except self.db.unique_violation:
                    conn.execute(self.db.q["rollback_savepoint"])
                    if named:
                        raise ConflictError(
                            f"job {job_id!r} cannot run again: an active job holds its unique_key"
                        ) from None
                    refused.add(job_id)
                conn.execute(self.db.q["release_savepoint"])
            conn.execute(self.db.q["rollback_savepoint"])  # the rest again, counted without those
            conn.execute(self.db.q["release_savepoint"])
            if not refused:
                raise  # refused as a whole, yet each alone was not: cannot happen with one writer
            kept = [job for job in jobs if job.id not in refused]
            return self._requeue_jobs(conn, kept, states, named) if kept else []
        conn.execute(self.db.q["release_savepoint"])
        if named:
            for job in jobs:  # requeued by someone else since we looked
                if job.id not in changed:
                    raise WrongStateError(f"job {job.id!r} is no longer {' or '.join(states)}")
        if changed:
            self.db.wake(conn)
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
        edges = conn.execute(self.db.q["locked_dependencies_of"], (self.db.array(ids),)).fetchall()
        waiting: dict[str, int] = {}
        for edge in sorted(edges, key=lambda e: (e["job_id"], e["dep_id"])):
            job_id, dep = edge["job_id"], edge["dep_id"]
            state = PENDING if dep in again else edge["state"]
            met = condition_met(edge["cond"], state)
            if met is False and stuck is not None:
                stuck.add(job_id)
            elif met is False:
                raise WrongStateError(
                    f"job {job_id!r} depends on {dep!r}, which is {state}: requeue {dep!r} too"
                )
            waiting[job_id] = waiting.get(job_id, 0) + (met is None)
        return waiting

    def _bulk(
        self,
        states: Sequence[str],
        queue: str | None,
        in_batch: str | None,
        batch: int,
        change: Callable[[Step], tuple[int, int, int]],
        progress: Callable[[int], None] | None,
    ) -> int:
        """Change every job in `states` (of `queue`, None: of every queue; of the batch
        `in_batch` if given) that exists now, a batch of at most `batch` at a time (fewer if a
        transaction would take long: see Pacer), each batch a transaction of its own: other
        clients' enqueues and claims go on between them. `change(step)` changes the jobs of
        one Step, and says how many it found, the new cursor and how many jobs it changed;
        `progress` gets the running total after each batch. A job can move between the states
        meanwhile (a runner claims or settles it) behind a cursor: the walks start again until
        one finds nothing. With one state there is no such move: a job found in it again was
        changed by this walk and came back (retried, run and dead again), so it is not changed
        twice. How many jobs were changed."""
        upto = self._newest_seq()
        pacer = Pacer(batch)
        done = 0
        while True:
            found_any = False
            for state in states:
                after = 0
                while True:
                    size = pacer.size
                    step = Step(state, queue, in_batch, after, upto, size)
                    found, after, changed = change(step)
                    pacer.took(found, self.held_s())
                    found_any = found_any or found > 0
                    done += changed
                    if changed and progress is not None:
                        progress(done)
                    if found < size:
                        break
            if not found_any or len(states) == 1:
                return done

    @operation()
    def _newest_seq(self) -> int:
        return int(self.db.value(self.db.connection(), "newest_seq"))

    def _bulk_ids(self, conn: Any, step: Step) -> tuple[list[str], int]:
        """The ids of a step's jobs (see _bulk), and the cursor after them."""
        params: dict[str, Any] = {
            "state": step.state,
            "queue": step.queue,
            "after": step.after,
            "upto": step.upto,
            "batch": step.size,
        }
        if step.in_batch is not None:
            params["in_batch"] = step.in_batch
            name = "bulk_batch_of_batch"
        else:
            name = "bulk_batch" if step.queue is None else "bulk_batch_of_queue"
        rows = conn.execute(self.db.q[name], params).fetchall()
        return [row["id"] for row in rows], int(rows[-1]["seq"]) if rows else step.after

    def bulk(
        self,
        action: str | None,
        where: JobFilter,
        batch: int = FILTER_BATCH,
        progress: Callable[[int, int], None] | None = None,
        window: int = BULK_WINDOW,
    ) -> tuple[int, int]:
        """Apply `action` (a key of BULK_ACTIONS; None: only count) to every job that existed
        when it began and matches the filter, oldest first: each batch of at most `batch`
        matches (fewer if a transaction would take long: see Pacer) is read outside any write
        transaction, then changed in a short transaction of its own (those that still match
        and whose state now allows it), so claims and enqueues go on between batches. Each
        job is matched once: the walk goes by seq, which no change moves.
        `progress(matched, changed)` after each batch. How many jobs matched, and how many
        were changed."""
        allowed = sorted(
            BULK_ACTIONS[action] & set(where.states or BULK_ACTIONS[action]) if action else ()
        )
        change = {
            "cancel": self._bulk_cancel,
            "retry": self._bulk_retry,
            "hold": self._bulk_hold,
            "release": self._bulk_release,
        }.get(action or "", self._bulk_delete)
        upto = self._newest_seq()
        pacer = Pacer(batch) if allowed else Pacer(batch, first=batch)
        after = matched = changed = 0
        while after < upto:
            ids, after = self._bulk_match(where, after, upto, pacer.size, window)
            if not ids:
                continue
            matched += len(ids)
            if allowed:
                changed += change(ids, allowed, where)
                pacer.took(len(ids), self.held_s())
            if progress is not None:
                progress(matched, changed)
        return matched, changed

    @operation()
    def _bulk_match(
        self, found: JobFilter, after: int, upto: int, batch: int, window: int
    ) -> tuple[list[str], int]:
        """The ids of the next batch of a bulk change (see bulk), and the cursor after it: the
        last id found if the batch is full, else the end of the window read."""
        end = min(upto, after + window)
        params = {**filter_params(found, self.db), "after": after, "upto": end, "batch": batch}
        rows = self.db.connection().execute(self.db.q["bulk_match"], params).fetchall()
        if len(rows) < batch:
            return [row["id"] for row in rows], end
        return [row["id"] for row in rows], int(rows[-1]["seq"])

    def _still_matched(self, conn: Any, ids: Sequence[str], found: JobFilter) -> list[str]:
        """The jobs of `ids` the filter still matches, in this transaction (locked on
        PostgreSQL): one changed by another client since it was found is left alone."""
        params = {**filter_params(found, self.db), "ids": self.db.array(ids)}
        return [row["id"] for row in conn.execute(self.db.q["bulk_recheck"], params)]

    @operation(replayable=False)
    def _bulk_cancel(self, ids: Sequence[str], allowed: Sequence[str], found: JobFilter) -> int:
        now = self.db.now()
        with self._timed() as conn:
            ids = self._still_matched(conn, ids, found)
            if not ids:
                return 0
            locked = conn.execute(self.db.q["locked_jobs"], (self.db.array(ids),)).fetchall()
            rows = [row for row in locked if row["state"] in allowed]
            cancelled, _ = self._cancel_rows(conn, rows, now)
        return len(cancelled)

    @operation(replayable=False)
    def _bulk_retry(self, ids: Sequence[str], allowed: Sequence[str], found: JobFilter) -> int:
        with self._timed() as conn:
            ids = self._still_matched(conn, ids, found)
            if not ids:
                return 0
            jobs = [job for job in self.enqueue.jobs_by_ids(conn, ids) if job.state in allowed]
            return len(self._requeue_jobs(conn, jobs, allowed, named=False)) if jobs else 0

    @operation(replayable=False)
    def _bulk_hold(self, ids: Sequence[str], allowed: Sequence[str], found: JobFilter) -> int:
        return self._bulk_change("bulk_hold", ids, allowed, found)

    @operation(replayable=False)
    def _bulk_release(self, ids: Sequence[str], allowed: Sequence[str], found: JobFilter) -> int:
        return self._bulk_change("bulk_release", ids, allowed, found, wake=True)

    @operation()
    def _bulk_delete(self, ids: Sequence[str], allowed: Sequence[str], found: JobFilter) -> int:
        return self._bulk_change("bulk_delete", ids, allowed, found)

    def _bulk_change(
        self,
        name: str,
        ids: Sequence[str],
        allowed: Sequence[str],
        found: JobFilter,
        wake: bool = False,
    ) -> int:
        """One statement `name` on those of `ids` still matched and in `allowed`; how many it
        changed."""
        with self._timed() as conn:
            ids = self._still_matched(conn, ids, found)
            if not ids:
                return 0
            params = {
                "ids": self.db.array(ids),
                "states": self.db.array(allowed),
                "now": self.db.now(),
            }
            changed = len(conn.execute(self.db.q[name], params).fetchall())
            if changed and wake:
                self.db.wake(conn)
        return changed

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
        return self.delete_finished(states, before, since, batch)

    def delete_finished(
        self, states: Sequence[str], before: int, since: int, batch: int
    ) -> tuple[int, int]:
        """Delete the oldest `batch` jobs in `states` that finished in [since, before), in a
        transaction of their own; how many, and when the last of them finished (where the next
        batch starts looking: the jobs of other states older than that are not read again)."""
        params = {"states": self.db.array(states), "before": before, "since": since, "batch": batch}
        with self.db.transaction() as conn:
            rows = conn.execute(self.db.q["expire_finished"], params).fetchall()
        return len(rows), max((int(r["finished_at"]) for r in rows), default=since)


def _check_cancellable(job_id: str, state: str) -> None:
    if state not in CANCELLABLE_STATES:
        raise WrongStateError(f"job {job_id!r} is {state}; it cannot be cancelled")
