"""Hooks fired in the transaction of the change they follow: their jobs enqueued with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuectl import lifecycle
from queuectl.errors import QueuectlError
from queuectl.hook import Event, hook_job, made_by
from queuectl.models import CANCELLED
from queuectl.store.dialect import Dialect
from queuectl.store.enqueue import Enqueue
from queuectl.store.rows import JobRow, new_id
from queuectl.store.settings import Settings

BATCH_EVENTS = {"batch_completed", "batch_finished"}


class Hooks:
    """Fires the hooks on jobs settled or cancelled."""

    def __init__(self, db: Dialect, settings: Settings, enqueue: Enqueue) -> None:
        self.db, self.settings, self.enqueue = db, settings, enqueue

    def any(self, conn: Any) -> bool:
        """Whether any hook exists (cached: with none, settling costs no query)."""
        return bool(self.settings.hooks(conn))

    def on_jobs(self, conn: Any) -> bool:
        """Whether any hook is on a job's own end, not only on batches finishing."""
        return any(set(hook.events) - BATCH_EVENTS for hook in self.settings.hooks(conn))

    def fire_settled(
        self,
        conn: Any,
        decided: Sequence[tuple[lifecycle.Outcome, lifecycle.Settlement]],
        cascaded: Sequence[Any],
        now: int,
    ) -> None:
        """The hooks on the settled jobs' new states, and on `cancelled` for their dependants
        cancelled by the cascade."""
        ids = self.db.array([outcome.job_id for outcome, _ in decided])
        found = conn.execute(self.db.q["hook_subjects"], (ids,)).fetchall()
        subjects = {r["id"]: r for r in found}
        events = [
            Event(
                o.job_id, subjects[o.job_id]["queue"], s.state, o.attempt, o.exit_code, s.last_error
            )
            for o, s in decided
            if subjects[o.job_id]["made_by"] is None
        ]
        self._fire(conn, [*events, *_cascade_events(cascaded)], now)

    def fire_cancelled(
        self, conn: Any, rows: Sequence[Any], cascaded: Sequence[Any], now: int
    ) -> None:
        """The hooks on `cancelled` for the jobs of these rows (as they were) and the dependants
        cancelled with them."""
        events = [
            Event(r["id"], r["queue"], CANCELLED, r["attempts"], r["exit_code"], "cancelled")
            for r in rows
            if r["made_by"] is None
        ]
        self._fire(conn, [*events, *_cascade_events(cascaded)], now)

    def fire_batch(
        self, conn: Any, batch: str, completed: bool, job_id: str, queue: str, now: int
    ) -> None:
        """The hooks on a batch that just finished (its last job's id and queue given)."""
        event = "batch_completed" if completed else "batch_finished"
        self._fire(conn, [Event(job_id, queue, event, 0, None, None, batch)], now)

    def _fire(self, conn: Any, events: Sequence[Event], now: int) -> None:
        """Enqueue the hook jobs of these events, in the caller's transaction."""
        made: list[tuple[JobRow, str]] = []
        default_retries = int(self.settings.settle_config(conn)["max_retries"])
        for event in events:
            for hook in self.settings.hooks(conn):
                if event.event not in hook.events or hook.queue not in (None, event.queue):
                    continue
                try:
                    job = hook_job(hook.job, event)
                except QueuectlError:
                    continue  # a template this version no longer accepts must not stop settling
                job.batch = None  # a hook job belongs to no batch: it would keep one open
                row = self.enqueue.row(job, new_id(), now, default_retries, 0, None)
                made.append((row, made_by(hook.name, event)))
        if made:
            self.db.many(conn, "insert_hook_job", [(*row, by) for row, by in made])
            self.db.count_inserted_ids(conn, [row.id for row, _ in made])
            self.db.wake(conn)


def _cascade_events(rows: Sequence[Any]) -> list[Event]:
    return [
        Event(r["id"], r["queue"], CANCELLED, r["attempts"], r["exit_code"], r["last_error"])
        for r in rows
        if r["made_by"] is None
    ]
