"""Administration: configuration, queues paused, hooks, and resetting the store."""

from __future__ import annotations

from queuectl.errors import ConflictError
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.records import Hook
from queuectl.store.settings import Settings


class Admin(Flow):
    """The settings an operator changes, and `reset`."""

    def __init__(self, db: Dialect, settings: Settings) -> None:
        super().__init__(db)
        self.settings = settings

    # -- configuration and queues

    @operation()
    def config(self) -> dict[str, float]:
        return self.db.read_config(self.db.connection())

    @operation()
    def set_config(self, key: str, value: float) -> None:
        self.settings.forget(hooks=False)
        with self.db.transaction() as conn:
            conn.execute(self.db.q["config_set"], (key, self.db.json(value)))
            self.db.wake(conn)

    @operation()
    def queues(self) -> dict[str, bool]:
        rows = self.db.connection().execute(self.db.q["queues"])
        return {row["name"]: bool(row["paused"]) for row in rows}

    @operation()
    def set_paused(self, queue: str, paused: bool) -> None:
        with self.db.transaction() as conn:
            conn.execute(self.db.q["set_paused"], (queue, paused))
            self.db.wake(conn)

    @operation()
    def add_hook(self, hook: Hook) -> None:
        self.settings.forget(config=False)
        with self.db.transaction() as conn:
            conn.execute(
                self.db.q["upsert_hook"],
                {
                    "name": hook.name,
                    "events": self.db.json(hook.events),
                    "queue": hook.queue,
                    "job": self.db.json(hook.job),
                    "now": hook.created_at_ms,
                },
            )

    @operation()
    def remove_hook(self, name: str) -> bool:
        self.settings.forget(config=False)
        with self.db.transaction() as conn:
            return bool(conn.execute(self.db.q["delete_hook"], (name,)).rowcount == 1)

    @operation()
    def hooks(self) -> list[Hook]:
        return self.settings.read_hooks(self.db.connection())

    # -- reset

    @operation(replayable=False)
    def reset(self, everything: bool) -> dict[str, int]:
        with self.db.transaction() as conn:
            # Checked inside the write: a runner registering meanwhile waits, then finds none.
            if int(self.db.value(conn, "live_runners")):
                raise ConflictError(
                    "a runner is up; stop it first with `queuectl worker stop`, then reset"
                )
            totals = conn.execute(self.db.q["job_totals"]).fetchone()
            deleted = {"jobs": int(totals["jobs"]), "attempts": int(totals["attempts"])}
            # History and edges first: the per-job trigger then finds nothing left to delete.
            for name in (
                "reset_attempts",
                "reset_deps",
                "reset_jobs",
                "reset_counts",
                "reset_finished_minutes",
                "reset_usage_minutes",
            ):
                conn.execute(self.db.q[name])
            if everything:
                for what in ("schedules", "hooks", "queues", "config"):
                    deleted[what] = int(conn.execute(self.db.q[f"reset_{what}"]).rowcount)
                conn.execute(self.db.q["reset_queue_starts"])
                conn.execute(self.db.q["reset_counters"])
                conn.execute(self.db.q["reset_usage_totals"])
            self.settings.forget()
            self.db.wake(conn)
        return deleted
