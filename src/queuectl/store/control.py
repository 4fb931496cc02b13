"""Control before a job runs: hold and release, edits, and the expiry of jobs not started by
their deadline."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from queuectl.durations import ms_to_iso
from queuectl.errors import InvalidInputError, NotFoundError, WrongStateError
from queuectl.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINISHED_STATES,
    PENDING,
    PROCESSING,
    Job,
    NewJob,
    condition_met,
)
from queuectl.store import rows as rows_
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.hooks import Hooks
from queuectl.store.records import BULK_BATCH, QueueDefaults
from queuectl.store.settle import Settle, batch_ends

WAITING = (PENDING, FAILED)
#: How many expired jobs one transaction of the runners' maintenance cancels.
EXPIRE_BATCH = 200
LIMITS = ("memory", "cpus", "max_procs")  # the job's resource limits, each cleared by a null


class Control(Flow):
    """hold, release, edit, and expiry."""

    def __init__(self, db: Dialect, settle: Settle, hooks: Hooks) -> None:
        super().__init__(db)
        self.settle, self.hooks, self.settings = settle, hooks, settle.settings

    @operation(replayable=False)
    def hold(self, job_ids: Sequence[str]) -> list[Job]:
        """Hold the jobs named, all or none: each must be waiting (pending or failed); one held
        already stays so."""
        return self._change("hold_jobs", job_ids, "held")

    @operation(replayable=False)
    def release(self, job_ids: Sequence[str]) -> list[Job]:
        """Release the jobs named, all or none; one not held is left as it is."""
        return self._change("release_jobs", job_ids, "released")

    def _change(self, name: str, job_ids: Sequence[str], done: str) -> list[Job]:
        db = self.db
        now = db.now()
        with db.transaction() as conn:
            locked = conn.execute(db.q["locked_jobs"], (db.array(job_ids),)).fetchall()
            found = {row["id"]: row for row in locked}
            for job_id in job_ids:
                if job_id not in found:
                    raise NotFoundError(f"no job {job_id!r}")
                state = found[job_id]["state"]
                if state not in WAITING:
                    why = "it runs now" if state == PROCESSING else "it has finished"
                    raise WrongStateError(f"job {job_id!r} is {state} and cannot be {done} ({why})")
            conn.execute(db.q[name], {"ids": db.array(list(found)), "now": now}).fetchall()
            if name == "release_jobs":
                db.wake(conn)
            changed = conn.execute(db.q["locked_jobs"], (db.array(job_ids),)).fetchall()
        jobs = {row["id"]: rows_.job(row, db.from_json) for row in changed}
        return [jobs[job_id] for job_id in dict.fromkeys(job_ids)]

    def hold_queue(self, queue: str, batch: int = BULK_BATCH) -> int:
        """Hold every waiting job of `queue`, a batch a transaction; how many were held."""
        done = 0
        for state in WAITING:
            after = 0
            while True:
                changed, after = self._hold_batch(queue, state, after, batch)
                done += changed
                if changed < batch:
                    break
        return done

    @operation()
    def _hold_batch(self, queue: str, state: str, after: int, batch: int) -> tuple[int, int]:
        params = {"queue": queue, "state": state, "after": after, "batch": batch}
        with self.db.transaction() as conn:
            found = conn.execute(self.db.q["hold_queue_batch"], {**params, "now": self.db.now()})
            seqs = [int(r["seq"]) for r in found.fetchall()]
        return len(seqs), max(seqs, default=after)

    def release_queue(self, queue: str, batch: int = BULK_BATCH) -> int:
        """Release every held job of `queue`, a batch a transaction; how many were released."""
        done = 0
        while True:
            changed = self._release_batch(queue, batch)
            done += changed
            if changed < batch:
                return done

    @operation()
    def _release_batch(self, queue: str, batch: int) -> int:
        params = {"queue": queue, "batch": batch, "now": self.db.now()}
        with self.db.transaction() as conn:
            changed = len(conn.execute(self.db.q["release_queue_batch"], params).fetchall())
            if changed:
                self.db.wake(conn)
        return changed

    def hold_batch(self, batch: str, size: int = BULK_BATCH) -> int:
        """Hold every waiting job of `batch`, `size` a transaction; how many were held."""
        return self._batch_walk("hold_in_batch", batch, size)

    def release_batch(self, batch: str, size: int = BULK_BATCH) -> int:
        """Release every held job of `batch`, `size` a transaction; how many were released."""
        return self._batch_walk("release_in_batch", batch, size)

    def _batch_walk(self, name: str, batch: str, size: int) -> int:
        done = 0
        for state in WAITING:
            after = 0
            while True:
                changed, after = self._batch_step(name, batch, state, after, size)
                done += changed
                if changed < size:
                    break
        return done

    @operation()
    def _batch_step(
        self, name: str, batch: str, state: str, after: int, size: int
    ) -> tuple[int, int]:
        """The next `size` of a batch's jobs in `state` after the cursor `after` (a seq)."""
        params = {"batch": batch, "state": state, "after": after, "size": size}
        with self.db.transaction() as conn:
            found = conn.execute(self.db.q[name], {**params, "now": self.db.now()})
            seqs = [int(r["seq"]) for r in found.fetchall()]
            if seqs and name == "release_in_batch":
                self.db.wake(conn)
        return len(seqs), max(seqs, default=after)

    @operation(replayable=False)
    def edit(self, job_id: str, job: NewJob, fields: Sequence[str], by: str) -> Job:
        """Change the `fields` of a waiting job to those of `job` (validated), in one statement
        that a claim cannot interleave with; WrongStateError if the job is running or finished
        (claimed meanwhile, say), and then nothing changed. The edit is noted in the job."""
        db = self.db
        now = db.now()
        given = set(fields)
        params: dict[str, Any] = {
            "id": job_id,
            "now": now,
            "command": job.command if "command" in given else None,
            "priority": job.priority if "priority" in given else None,
            "queue": job.queue if "queue" in given else None,
            "run_at": job.first_run_at(now) if given & {"run_at", "delay"} else None,
            "env": db.json(job.env) if "env" in given else None,
            "set_timeout": "timeout" in given,
            "timeout": job.timeout,
            "max_retries": job.max_retries if "max_retries" in given else None,
            "set_lock": "lock" in given,
            "lock": job.lock,
            "set_deps": "depends_on" in given,
            "depends_on": db.json(job.depends_on),
            "waiting": 0,
            "set_expires": "expires" in given,
            "expires_at": job.expires_at(now),
            **{f"set_{limit}": limit in given for limit in LIMITS},
            **{limit: getattr(job, limit) for limit in LIMITS},
            "edit": db.json({"at": ms_to_iso(now), "by": by, "fields": sorted(given)}),
        }
        with db.transaction() as conn:
            if "depends_on" in given:
                params["waiting"] = self._new_dependencies(
                    conn, job_id, job.depends_on, job.conditions
                ) + self._batches_waited(conn, job_id)
            if conn.execute(db.q["edit_job"], params).fetchone() is None:
                now_job = self._job(conn, job_id)
                if now_job is None:
                    raise NotFoundError(f"no job {job_id!r}")
                raise WrongStateError(f"job {job_id!r} {_why_not(now_job)}: not changed")
            if "depends_on" in given:
                conn.execute(db.q["edit_drop_deps"], {"id": job_id})
                edges = [
                    (dep, job_id, job.conditions.get(dep, COMPLETED)) for dep in job.depends_on
                ]
                db.many(conn, "insert_dep", edges)
            db.wake(conn)
            edited = self._job(conn, job_id)
        assert edited is not None
        return edited

    def _job(self, conn: Any, job_id: str) -> Job | None:
        row = conn.execute(self.db.q["jobs_by_ids"], (self.db.array([job_id]),)).fetchone()
        return None if row is None else rows_.job(row, self.db.from_json)

    def _new_dependencies(
        self, conn: Any, job_id: str, deps: Sequence[str], conditions: dict[str, str]
    ) -> int:
        """How many of a job's new dependencies have not met their condition yet, read as
        enqueue reads them (locked on PostgreSQL); refused if one is missing or can never meet
        it, or depends on the job itself (a cycle that would never run)."""
        db = self.db
        states = {r["id"]: r["state"] for r in conn.execute(db.q["dep_states"], (db.array(deps),))}
        unmet = 0
        for dep in deps:
            if dep not in states:
                raise InvalidInputError(f"depends_on: no job {dep!r}")
            met = condition_met(conditions.get(dep, COMPLETED), states[dep])
            if met is False:
                raise InvalidInputError(
                    f"depends_on: {dep!r} is {states[dep]}; it never meets the condition"
                )
            unmet += met is None
        seen, level = {job_id}, [job_id]
        while level:
            edges = conn.execute(db.q["dependants_of"], (db.array(level),)).fetchall()
            level = [e["job_id"] for e in edges if e["job_id"] not in seen]
            seen.update(level)
        if job_id in deps:
            raise InvalidInputError("depends_on: a job cannot depend on itself")
        looped = [dep for dep in deps if dep in seen]
        if looped:
            raise InvalidInputError(f"depends_on: {looped[0]!r} waits for {job_id!r} already")
        return unmet

    def _batches_waited(self, conn: Any, job_id: str) -> int:
        """How many of the batches a job waits for (--after-batch) have not finished: an edit
        of its dependencies keeps those waits. Each batch is locked as enqueue locks it, so
        its end cannot slip between this count and the edit."""
        db = self.db
        waiting = 0
        for row in conn.execute(db.q["batch_waits"], {"id": job_id}).fetchall():
            conn.execute(db.q["lock_batch"], {"name": row["batch"]})
            found = conn.execute(db.q["batch_state"], {"name": row["batch"]}).fetchone()
            waiting += found is not None and found["finished_at"] is None
        return waiting

    # -- queues' defaults for their jobs

    @operation()
    def queue_defaults(self) -> dict[str, QueueDefaults]:
        return self.settings.read_queue_defaults(self.db.connection())

    @operation()
    def set_queue_defaults(
        self, queue: str, defaults: QueueDefaults, keep: Collection[str] = ()
    ) -> None:
        params = {
            "name": queue,
            "timeout": defaults.timeout,
            "max_retries": defaults.max_retries,
            "keep_timeout": "timeout" in keep,
            "keep_max_retries": "max_retries" in keep,
        }
        with self.db.transaction() as conn:
            conn.execute(self.db.q["set_queue_defaults"], params)
        self.settings.forget(config=False, hooks=False)

    # -- expiry, by the runners' maintenance

    @operation()
    def expire_unstarted(self, batch: int = EXPIRE_BATCH) -> list[str]:
        """Cancel a batch of the jobs whose deadline passed before they started, and their
        dependants, in one short transaction; the ids of those expired (fewer than `batch`:
        none is left)."""
        db = self.db
        now = db.now()
        if not db.value(db.connection(), "any_past_deadline", {"now": now}):
            return []  # the common case, without taking the write lock
        with db.transaction() as conn:
            rows = conn.execute(
                db.q["unstarted_past_deadline"], {"now": now, "batch": batch}
            ).fetchall()
            if not rows:
                return []
            ids = [row["id"] for row in rows]
            params = {"ids": db.array(ids), "now": now}
            expired = {
                r["id"] for r in conn.execute(db.q["expire_unstarted_jobs"], params).fetchall()
            }
            if expired:
                cascaded = self.settle.cascade(conn, expired, CANCELLED, now)
                done = [row for row in rows if row["id"] in expired]
                if self.hooks.any(conn):
                    self.hooks.fire_cancelled(conn, done, cascaded, now)
                # as any cancel: a batch this finished fires its hooks and lets go of the
                # jobs waiting for it (cancelled, naming it)
                self.settle.finish_batches(conn, batch_ends(done) + batch_ends(cascaded), now)
        return [job_id for job_id in ids if job_id in expired]


def _why_not(job: Job) -> str:
    """Why a job cannot be changed now."""
    if job.state == PROCESSING:
        return "is processing (claimed meanwhile)"
    if job.state in FINISHED_STATES:
        return f"is {job.state}"
    return "waits for its cancelled attempt's processes to end"
