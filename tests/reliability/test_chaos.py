"""Chaos: runners are SIGKILLed at random and replaced while jobs flow; at the end
nothing is lost, nothing is stuck, nothing is in the DLQ, and no two runs of a job overlapped.
Flow control holds through it: a fifth of the jobs go to a queue limited to LIMIT at
once, a tenth share one lock, and neither limit is ever exceeded by what the jobs recorded.
Batches too: an array limited to ARRAY_LIMIT at once (never exceeded either), and a batch fed
over the chaos with one job cancelled; each batch's hook fires exactly once.

`QUEUECTL_CHAOS_SECONDS` sets how long the kills go on (default 15; `make test-slow` runs it
again for 60); with `QUEUECTL_CHAOS_REPORT=PATH` the figures are written there as JSON, one object per backend.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from pathlib import Path

import pytest

from queuectl import Queue
from tests.reliability.conftest import (
    Runners,
    append_line,
    audit,
    check_final_state,
    job_command,
    kill_runner,
    peak,
)
from tests.support.runners import tagged, wait_until

SECONDS = float(os.environ.get("QUEUECTL_CHAOS_SECONDS", "15"))
JOBS = 2000
RUNNERS = 3
WORKERS = 4
FEED_SHARE = 0.7  # jobs are enqueued in batches over this share of the chaos, so kills hit work
LIMITED, LIMIT = "limited", 2  # every 5th job goes to this queue, limited to LIMIT at once
LOCK = "chaos"  # every 10th job holds this lock (half of them in the limited queue)
ARRAY, ARRAY_SPEC, ARRAY_LIMIT = "arr", "1-120%3", 3  # enqueued as the chaos starts
MIXED = "mixed"  # every 50th job's batch, and a held job cancelled once the feeding is over


def job_fields(n: int) -> dict[str, object]:
    """Job n's queue and lock."""
    return {
        **({"queue": LIMITED} if n % 5 == 0 else {}),
        **({"lock": LOCK} if n % 10 in (0, 3) else {}),
        **({"batch": MIXED} if n % 50 == 7 else {}),
    }


def chaos(
    target: str, backend: str, runners: Runners, log: Path, seconds: float, job_count: int
) -> dict[str, object]:
    """Run the chaos and audit it; the figures."""
    rng = random.Random()
    queue = Queue(target)
    # Each kill costs the jobs it was running an attempt; retries come one second later.
    queue.set_config("backoff_base", 1)
    queue.set_config("backoff_max", 1)
    queue.set_queue(LIMITED, concurrency=LIMIT)
    queue.add_hook("batches", "batch_completed,batch_finished", {"command": "true"})
    command = job_command(log, "sleep 0.05")
    ids = [f"job-{n}" for n in range(job_count)]
    fields = {job_id: job_fields(n) for n, job_id in enumerate(ids)}
    batches = [ids[n : n + 100] for n in range(0, job_count, 100)]
    # Held until the feeding is over: the batch stays open until then, and finishes once.
    doomed = queue.enqueue("true", id="mixed-doomed", batch=MIXED, held=True).id
    live = [runners.start(target, WORKERS) for _ in range(RUNNERS)]
    _, arrayed = queue.enqueue_array(
        ARRAY_SPEC, {"id": ARRAY, "command": command, "max_retries": 20}
    )
    array_ids = [f"{ARRAY}.{i}" for i in range(1, arrayed + 1)]
    fields.update({job_id: {"batch": ARRAY} for job_id in array_ids})
    ids += array_ids
    job_count += arrayed

    began = time.monotonic()
    end = began + seconds
    feed_every = seconds * FEED_SHARE / max(1, len(batches))
    next_feed = began
    next_kill = began + rng.uniform(0.5, 2.0)
    kills = jobs_cut = 0
    while True:
        now = time.monotonic()
        if batches and now >= next_feed:
            batch = batches.pop(0)
            queue.enqueue_many(
                [{"id": i, "command": command, "max_retries": 20, **fields[i]} for i in batch]
            )
            next_feed += feed_every
            if not batches:
                queue.cancel(doomed)
        elif now >= end and not batches:
            break
        elif now >= next_kill:
            victim = rng.choice(live)
            jobs_cut += kill_runner(victim, log)
            live.remove(victim)
            kills += 1
            live.append(runners.start(target, WORKERS))
            next_kill = time.monotonic() + rng.uniform(0.5, 2.0)
        else:
            time.sleep(max(0.0, min(next_kill, next_feed if batches else end, end) - now))
    append_line(log, f"# chaos over after {time.monotonic() - began:.1f}s")

    runners.stop_all(timeout=120)  # graceful: they finish what they run
    final = runners.start(target, WORKERS)

    def drained() -> bool:
        # Every job finished, the hook jobs too (enqueued with the last of their batch).
        counts = queue.status()["counts"]
        return counts["pending"] + counts["processing"] + counts["failed"] == 0

    wait_until(drained, 240, "the final runner to drain the queue", step=0.5)
    runners.stop_all()
    assert final.process.returncode == 0

    result = audit(log)
    hook_jobs = [job for job in queue.list(limit=None) if job.made_by is not None]
    fired = Counter((j.env["QUEUECTL_EVENT"], j.env["QUEUECTL_EVENT_BATCH"]) for j in hook_jobs)
    problems = result.problems + check_final_state(
        queue, result, ids, others={doomed, *(j.id for j in hook_jobs)}
    )
    if queue.get(doomed).state != "cancelled":
        problems.append(f"{doomed} is {queue.get(doomed).state}, not cancelled")
    cut = {(r.job, r.attempt) for r in result.runs if r.end_ns is None}
    pgids = {(r.job, r.attempt): r.pgid for r in result.runs}
    recovered = {
        (job, pgids[job, a.attempt]): a.finished_at_ms or 0
        for job in {job for job, _ in cut}
        for a in queue.history(job)
        if (job, a.attempt) in cut
    }
    limited_peak = peak(
        [r for r in result.runs if fields[r.job].get("queue") == LIMITED], result, recovered
    )
    lock_peak = peak([r for r in result.runs if "lock" in fields[r.job]], result, recovered)
    array_peak = peak(
        [r for r in result.runs if fields[r.job].get("batch") == ARRAY], result, recovered
    )
    if array_peak > ARRAY_LIMIT:
        problems.append(f"array {ARRAY!r} ran {array_peak} jobs at once, over its {ARRAY_LIMIT}")
    if limited_peak > LIMIT:
        problems.append(f"queue {LIMITED!r} ran {limited_peak} jobs at once, over its {LIMIT}")
    if lock_peak > 1:
        problems.append(f"{lock_peak} jobs holding lock {LOCK!r} ran at once")
    counts = queue.status()["counts"]
    states = {job.id: job.state for job in queue.list(limit=None)}
    queue.close()
    figures = {
        "backend": backend,
        "seconds": round(seconds, 1),
        "jobs": job_count,
        "runs": len(result.runs),
        "jobs_run": len(result.by_job),
        "runners_killed": kills,
        "jobs_running_when_killed": jobs_cut,
        "runs_repeated": result.repeated,
        "jobs_lost": sum(1 for job_id in ids if states[job_id] != "completed"),
        "duplicates_overlapping": len(set(result.overlaps)),
        "left_processing": counts["processing"],
        "dead": counts["dead"],
        "limited_peak": limited_peak,
        "lock_peak": lock_peak,
        "array_peak": array_peak,
        "batch_hooks": {f"{event} {batch}": n for (event, batch), n in sorted(fired.items())},
        "problems": problems[:20],
    }
    print(f"chaos figures: {json.dumps(figures)}")
    report = os.environ.get("QUEUECTL_CHAOS_REPORT")
    if report:
        path = Path(report)
        previous = json.loads(path.read_text()) if path.exists() and path.read_text() else {}
        path.write_text(json.dumps({**previous, backend: figures}, indent=2) + "\n")
    return figures


@pytest.mark.timeout(SECONDS + 600)
def test_chaos_loses_nothing_and_runs_nothing_twice_at_once(
    target: str, backend: str, runners: Runners, tmp_path: Path, tag: str
) -> None:
    figures = chaos(target, backend, runners, tmp_path / "runs.log", SECONDS, JOBS)

    assert figures["problems"] == []
    assert figures["jobs_run"] == figures["jobs"]
    assert (figures["jobs_lost"], figures["duplicates_overlapping"]) == (0, 0)
    assert (figures["left_processing"], figures["dead"]) == (0, 0)
    assert figures["runners_killed"] >= 1
    # The limits were reached (so they were tested), and held (checked with the problems).
    assert (figures["limited_peak"], figures["lock_peak"]) == (LIMIT, 1)
    assert figures["array_peak"] == ARRAY_LIMIT
    assert figures["batch_hooks"] == {f"batch_completed {ARRAY}": 1, f"batch_finished {MIXED}": 1}
    assert tagged(tag) == []
