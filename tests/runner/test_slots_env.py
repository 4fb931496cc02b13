"""QUEUECTL_SLOT with a real runner: each attempt's slot is in 0..W-1 and no two attempts
running at once under one runner share it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from tests.support.runners import wait_until

#: Each job appends `start <slot> <ns> <id>` and `end <slot> <ns> <id>` to a shared file.
RECORD = (
    'echo "start $QUEUECTL_SLOT $(date +%s%N) $QUEUECTL_JOB_ID" >> {log}; sleep {hold}; '
    'echo "end $QUEUECTL_SLOT $(date +%s%N) $QUEUECTL_JOB_ID" >> {log}'
)


def test_running_attempts_never_share_a_slot(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    log = tmp_path / "record"
    holds = [0.4, 0.2, 0.6, 0.3, 0.1, 0.5, 0.2, 0.4, 0.3, 0.1, 0.2, 0.3]
    ids = [queue.enqueue(RECORD.format(log=log, hold=hold)).id for hold in holds]
    start_runner("--count", "3")
    wait_until(
        lambda: all(queue.get(job_id).state == "completed" for job_id in ids), 60, "the jobs"
    )
    spans: dict[str, dict[str, int]] = {}
    slot_of: dict[str, int] = {}
    for line in log.read_text().splitlines():
        kind, slot, ns, job_id = line.split()
        spans.setdefault(job_id, {})[kind] = int(ns)
        slot_of[job_id] = int(slot)
    assert set(spans) == set(ids)
    assert set(slot_of.values()) == {0, 1, 2}  # three at once: each slot was used
    for a in ids:
        for b in ids:
            if a < b and slot_of[a] == slot_of[b]:
                overlap = (
                    spans[a]["start"] < spans[b]["end"] and spans[b]["start"] < spans[a]["end"]
                )
                assert not overlap, f"{a} and {b} ran at once on slot {slot_of[a]}"
    # Three workers and twelve jobs: they did overlap, so the check above had work to do.
    events = sorted((t, 1 if k == "start" else -1) for s in spans.values() for k, t in s.items())
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    assert peak == 3
