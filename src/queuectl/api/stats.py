"""The dashboard's throughput chart: jobs finished per minute over the last hour, from one
aggregate query of the store."""

from __future__ import annotations

from queuectl.durations import ms_to_iso
from queuectl.models import COMPLETED, DEAD, FAILED
from queuectl.queue import Queue

MINUTE_MS = 60_000


def throughput(queue: Queue, now_ms: int, minutes: int = 60) -> dict[str, object]:
    """Jobs that completed, and attempts that failed, per minute, oldest minute first."""
    first_minute = now_ms // MINUTE_MS - minutes + 1
    per_minute = queue.finished_per_minute(first_minute * MINUTE_MS)
    buckets = []
    sampled = 0
    for minute in range(first_minute, first_minute + minutes):
        counts = per_minute.get(minute, {})
        completed = counts.get(COMPLETED, 0)
        failed = counts.get(FAILED, 0) + counts.get(DEAD, 0)
        sampled += completed + failed
        buckets.append(
            {"start": ms_to_iso(minute * MINUTE_MS), "completed": completed, "failed": failed}
        )
    return {"bucket_seconds": MINUTE_MS // 1000, "buckets": buckets, "sampled": sampled}
