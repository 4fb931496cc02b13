"""Figures the store has no query for, computed from pages of jobs (Queue.page): throughput per
minute, recent durations, attempts, and the age of the oldest due job.

Each scan reads at most SCAN_CAP jobs of a state, newest first, so a scrape of a very large store
stays bounded; the figures then describe the newest jobs only (reported as `capped`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from queuectl.durations import ms_to_iso
from queuectl.models import COMPLETED, DEAD, FAILED, PENDING, STATES, Job
from queuectl.queue import Queue

SCAN_CAP = 5000
PAGE_SIZE = 500
MINUTE_MS = 60_000


def scan(queue: Queue, state: str, cap: int = SCAN_CAP) -> Iterator[Job]:
    """Jobs in `state`, newest first, at most `cap` of them."""
    cursor: str | None = None
    seen = 0
    while seen < cap:
        page, cursor = queue.page(state, None, min(PAGE_SIZE, cap - seen), cursor)
        jobs = page
        yield from jobs
        seen += len(jobs)
        if cursor is None:
            return


def throughput(queue: Queue, now_ms: int, minutes: int = 60) -> dict[str, object]:
    """Jobs that completed, and attempts that failed, per minute, oldest minute first."""
    first = (now_ms // MINUTE_MS - minutes + 1) * MINUTE_MS
    completed = [0] * minutes
    failed = [0] * minutes
    sampled = 0
    capped = False
    for state, counts in ((COMPLETED, completed), (FAILED, failed), (DEAD, failed)):
        seen = 0
        for job in scan(queue, state):
            seen += 1
            if job.finished_at_ms is not None and first <= job.finished_at_ms <= now_ms:
                counts[(job.finished_at_ms - first) // MINUTE_MS] += 1
        sampled += seen
        capped = capped or seen >= SCAN_CAP
    return {
        "bucket_seconds": MINUTE_MS // 1000,
        "buckets": [
            {
                "start": ms_to_iso(first + n * MINUTE_MS),
                "completed": completed[n],
                "failed": failed[n],
            }
            for n in range(minutes)
        ],
        "sampled": sampled,
        "capped": capped,
    }


@dataclass
class Snapshot:
    """What /metrics shows beyond the store's counts, from one scan of every state."""

    attempts: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, state) -> sum
    durations_s: dict[str, list[float]] = field(default_factory=dict)  # queue -> last attempts
    oldest_due_ms: dict[str, int] = field(default_factory=dict)  # queue -> earliest due run_at


def snapshot(queue: Queue, now_ms: int) -> Snapshot:
    """Attempts per queue and state, recent durations per queue, oldest due job per queue."""
    snap = Snapshot()
    dependency_done: dict[str, bool] = {}

    def due(job: Job) -> bool:
        if job.run_at_ms > now_ms:
            return False
        for dep in job.depends_on:
            if dep not in dependency_done:
                found = queue.store.get(dep)
                dependency_done[dep] = found is not None and found.state == COMPLETED
            if not dependency_done[dep]:
                return False
        return True

    for state in STATES:
        for job in scan(queue, state):
            key = (job.queue, state)
            snap.attempts[key] = snap.attempts.get(key, 0) + job.attempts
            if job.duration_ms is not None and state in (COMPLETED, FAILED, DEAD):
                snap.durations_s.setdefault(job.queue, []).append(job.duration_ms / 1000)
            if state in (PENDING, FAILED) and due(job):
                oldest = snap.oldest_due_ms.get(job.queue)
                if oldest is None or job.run_at_ms < oldest:
                    snap.oldest_due_ms[job.queue] = job.run_at_ms
    return snap
