"""Batches: their progress from the counters kept with every change, and their limits."""

from __future__ import annotations

from typing import Any

from queuectl.store.dialect import Flow, operation
from queuectl.store.records import Batch


class Batches(Flow):
    """Reading batches and changing their concurrency limits."""

    @operation()
    def batches(self, name: str | None = None) -> list[Batch]:
        found = self.db.connection().execute(self.db.q["batch_rows"], {"name": name})
        return [self._batch(row) for row in found.fetchall()]

    def _batch(self, row: Any) -> Batch:
        counts = self.db.json_value(row["counts"]) or {}
        return Batch(
            name=row["name"],
            concurrency=row["concurrency"],
            counts={state: int(n) for state, n in counts.items()},
            created_at_ms=row["created_at"],
            started_at_ms=row["started_at"],
            ended_at_ms=row["ended_at"],
            finished_at_ms=row["finished_at"],
        )

    @operation()
    def batch_waits(self, job_id: str) -> list[str]:
        found = self.db.connection().execute(self.db.q["batch_waits"], {"id": job_id})
        return sorted(row["batch"] for row in found.fetchall())

    @operation()
    def set_batch_limit(self, name: str, concurrency: int | None) -> bool:
        """Set a batch's concurrency limit (None: none); whether the batch exists. Its jobs
        follow: those of a limited batch are claimed through flow control."""
        db = self.db
        with db.transaction() as conn:
            params = {"name": name, "concurrency": concurrency}
            if not conn.execute(db.q["batch_set_limit"], params).rowcount:
                return False
            limited = {"name": name, "limited": concurrency is not None}
            conn.execute(db.q["batch_limit_jobs"], limited)
            db.wake(conn)  # a raised limit may let waiting jobs start
        return True
