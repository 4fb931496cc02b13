"""Control before a job runs: hold and release, edits, and the expiry of jobs not started by
their deadline."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Sequence

from queuectl.errors import NotFoundError, WrongStateError
from queuectl.models import CANCELLED, FAILED, PENDING, PROCESSING, Job
from queuectl.store import rows as rows_
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.hooks import Hooks
from queuectl.store.reads import FAR_FUTURE
from queuectl.store.records import BULK_BATCH, Page
from queuectl.store.settle import Settle

WAITING = (PENDING, FAILED)
#: How many expired jobs one transaction of the runners' maintenance cancels.
EXPIRE_BATCH = 200


class Control(Flow):
    """hold, release, edit, and expiry."""

    def __init__(self, db: Dialect, settle: Settle, hooks: Hooks) -> None:
        super().__init__(db)
        self.settle, self.hooks = settle, hooks

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

    @operation()
    def list_held(
        self,
        states: Sequence[str] | None,
        queues: Sequence[str] | None,
        limit: int | None,
        before: int | None,
    ) -> Page:
        """Held jobs, newest first, as list_jobs lists jobs."""
        conn = self.db.connection()
        params = {"limit": FAR_FUTURE if limit is None else limit}
        params["before"] = FAR_FUTURE if before is None else before
        any_: list[str | None] = [None]
        walks = [
            conn.execute(self.db.q["list_held"], {**params, "state": state, "queue": queue})
            for state in dict.fromkeys(states or any_)
            for queue in dict.fromkeys(queues or any_)
        ]
        merged = heapq.merge(*walks, key=lambda row: int(row["seq"]), reverse=True)
        found = list(itertools.islice(merged, params["limit"]))
        more = limit is not None and limit > 0 and len(found) == limit
        jobs = [rows_.job(r, self.db.from_json) for r in found]
        return Page(jobs, found[-1]["seq"] if more else None)

    # -- expiry, by the runners' maintenance

    @operation()
    def expire_unstarted(self, batch: int = EXPIRE_BATCH) -> list[str]:
        """Cancel a batch of the jobs whose deadline passed before they started, and their
        dependants, in one short transaction; the ids of those expired (fewer than `batch`:
        none is left)."""
        db = self.db
        now = db.now()
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
                if self.hooks.any(conn):
                    done = [row for row in rows if row["id"] in expired]
                    self.hooks.fire_cancelled(conn, done, cascaded, now)
        return [job_id for job_id in ids if job_id in expired]
