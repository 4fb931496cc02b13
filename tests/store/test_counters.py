"""The counters of migration 0004 equal a full count of the jobs after every kind of change,
and the reads they and the new indexes serve (list filters, oldest due) answer as a scan would.

PostgreSQL runs each check twice: with the deltas as they are, and compacted at every read.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from queuectl.errors import QueuectlError
from queuectl.lifecycle import Outcome
from queuectl.models import STATES, Job, new_job
from queuectl.store import Hook, JobFilter, Runner, Store
from tests.support import fake_runner
from tests.support.clock import FakeClock
from tests.support.fake_runner import claims

LEASE_S = 30.0
QUEUES = ("default", "mail", "video")


@pytest.fixture(params=["as-is", "compacted"])
def compaction(request: pytest.FixtureRequest, store: Store, backend: str) -> str:
    if request.param == "compacted":
        if backend != "postgres":
            pytest.skip("only PostgreSQL keeps deltas")
        store.compact_after = 0  # type: ignore[attr-defined]
    return str(request.param)


def every_job(store: Store) -> list[Job]:
    return store.list_jobs().jobs


def check_exact(store: Store, clock: FakeClock) -> None:
    """Counts, attempts, oldest due and every list filter agree with a scan of every job."""
    jobs = every_job(store)
    counts: dict[str, Counter[str]] = {}
    attempts: dict[str, Counter[str]] = {}
    for job in jobs:
        counts.setdefault(job.queue, Counter())[job.state] += 1
        attempts.setdefault(job.queue, Counter())[job.state] += job.attempts
    assert store.counts() == {q: dict(states) for q, states in counts.items()}
    assert store.attempts_by_queue() == {q: dict(states) for q, states in attempts.items()}
    states = {job.id: job.state for job in jobs}
    now = clock.now_ms()
    due: dict[str, int] = {}
    for job in jobs:
        ready = all(states.get(dep, "completed") == "completed" for dep in job.depends_on)
        if job.state in ("pending", "failed") and ready and job.run_at_ms <= now:
            due[job.queue] = min(due.get(job.queue, job.run_at_ms), job.run_at_ms)
    assert store.oldest_due(now) == due
    newest_first = sorted(jobs, key=lambda job: job.created_at_ms, reverse=True)
    for state in (None, *STATES):
        for queue in (None, *QUEUES, "nowhere"):
            want = [
                job.id
                for job in newest_first
                if (state is None or job.state == state) and (queue is None or job.queue == queue)
            ]
            states = None if state is None else [state]
            queues = None if queue is None else [queue]
            page = store.list_jobs(JobFilter(states=states, queues=queues), 2)
            assert [job.id for job in page.jobs] == want[:2], (state, queue)
            if page.next_before is not None:
                rest = store.list_jobs(
                    JobFilter(states=states, queues=queues), None, page.next_before
                ).jobs
                assert [job.id for job in rest] == want[2:], (state, queue)


def add(store: Store, clock: FakeClock, *jobs: dict[str, Any]) -> list[Job]:
    clock.advance(0.001)  # distinct created_at, so newest-first is a total order
    return store.enqueue_many([new_job({"command": "true", **job}) for job in jobs])


def claim(store: Store, want: int, owner: str = "r1") -> list[tuple[str, int, int]]:
    return [(c.id, c.attempt, c.token) for c in claims(store, want, owner=owner)]


def settle(
    store: Store, job: tuple[str, int, int], exit_code: int | None, owner: str = "r1"
) -> None:
    job_id, attempt, token = job
    error = None if exit_code is not None else "worker lost"
    fake_runner.settle(
        store,
        job_id,
        exit_code,
        owner=owner,
        error=error,
        duration_ms=10,
        attempt=attempt,
        token=token,
    )


def test_every_change_keeps_the_counters_exact(
    store: Store, clock: FakeClock, compaction: str
) -> None:
    check_exact(store, clock)
    add(store, clock, {"id": "a", "queue": "mail", "max_retries": 0}, {"id": "b"})
    add(
        store,
        clock,
        {"id": "c", "queue": "video", "depends_on": ["a"]},
        {"id": "d", "queue": "video", "depends_on": ["c"]},
    )
    add(store, clock, {"id": "later", "delay": "1h"}, {"id": "u1", "unique_key": "k"})
    add(store, clock, {"id": "u2", "unique_key": "k"})  # held by u1: nothing inserted
    check_exact(store, clock)
    running = claim(store, 2)
    check_exact(store, clock)
    for job in running:
        settle(store, job, 1)  # a fails and dies (max_retries 0): c and d are cancelled
    check_exact(store, clock)
    clock.advance(5)
    [job] = claim(store, 1)
    settle(store, job, 0)
    check_exact(store, clock)
    assert store.requeue(None, ["dead"])
    check_exact(store, clock)
    [job] = claim(store, 1, owner="r2")
    assert store.release("r2", job[0], job[1])
    check_exact(store, clock)
    running = claim(store, 3)
    clock.advance(LEASE_S + 1)
    assert store.reap([])  # expired leases: worker lost, attempts kept
    check_exact(store, clock)
    add(
        store,
        clock,
        {"id": "e", "queue": "mail"},
        {"id": "f", "queue": "mail", "depends_on": ["e"]},
    )
    store.cancel(["e"])  # cascades to f
    check_exact(store, clock)
    store.register_runner(Runner("r3", "here", 1, 1, None, 0, 0))
    claim(store, 5, owner="r3")
    store.reap(["r3"])  # a dead runner's jobs
    check_exact(store, clock)
    assert store.purge(["completed", "dead", "cancelled"], clock.now_ms() + 1) > 0
    check_exact(store, clock)
    store.cancel([job.id for job in every_job(store) if job.state in ("pending", "failed")])
    store.purge(["cancelled"], clock.now_ms() + 1)
    check_exact(store, clock)
    assert store.counts() == {}


def test_a_refused_batch_leaves_the_counters_alone(store: Store, clock: FakeClock) -> None:
    add(store, clock, {"id": "a"})
    with pytest.raises(QueuectlError):
        add(store, clock, {"id": "b", "queue": "mail"}, {"id": "a"})
    with pytest.raises(QueuectlError):
        add(store, clock, {"id": "c", "queue": "mail"}, {"id": "d", "depends_on": ["nobody"]})
    check_exact(store, clock)
    assert store.counts() == {"default": {"pending": 1}}


@pytest.mark.parametrize("seed", range(4))
def test_random_operations_keep_the_counters_exact(
    store: Store, clock: FakeClock, compaction: str, seed: int
) -> None:
    rng = random.Random(seed)
    running: dict[str, list[tuple[str, int]]] = {"r1": [], "r2": []}
    made = 0
    # Hook jobs are inserted where settling and cancelling happen, each counted there too; one
    # holds a unique key, so a second while it is active is not inserted (nor counted).
    store.add_hook(Hook("told", ["dead"], None, {"command": "true", "cwd": "/"}, 0))
    store.add_hook(
        Hook("once", ["cancelled"], "mail", {"command": "true", "unique_key": "once"}, 0)
    )
    for _ in range(60):
        step = rng.choice(
            [
                *("add", "add", "stream", "claim", "settle", "settle"),
                *("cancel", "retry", "purge", "reap", "time"),
            ]
        )
        ids = [job.id for job in every_job(store)]
        owner = rng.choice(list(running))
        if step in ("add", "stream"):
            batch = []
            # a plain batch (no key, no dependency) goes in by the bulk path, counted at once
            plain = rng.random() < 0.5
            for _ in range(rng.randint(1, 60 if plain else 4)):
                made += 1
                job: dict[str, Any] = {
                    "id": f"j{made}",
                    "queue": rng.choice(QUEUES),
                    "max_retries": rng.randint(0, 1),
                }
                if not plain and ids and rng.random() < 0.3:
                    job["depends_on"] = [rng.choice(ids)]
                if not plain and rng.random() < 0.2:
                    job["unique_key"] = rng.choice(["k1", "k2"])
                if rng.random() < 0.2:
                    job["delay"] = "2s"
                batch.append(job)
            if step == "add":
                add(store, clock, *batch)
            else:
                clock.advance(0.001)
                new = [
                    (f"line {n}", new_job({"command": "true", **job}))
                    for n, job in enumerate(batch)
                ]
                cut = rng.randint(0, len(new))
                store.enqueue_batches([new[:cut], new[cut:]], lambda jobs: None)
        elif step == "claim":
            running[owner] += claim(store, rng.randint(1, 3), owner)
        elif step == "settle" and running[owner]:
            settle(store, running[owner].pop(0), rng.choice([0, 0, 1, None]), owner)
        elif step == "cancel" and ids:
            job_id = rng.choice(ids)
            if store.get(job_id).state in ("pending", "failed", "processing"):  # type: ignore[union-attr]
                store.cancel([job_id])
        elif step == "retry":
            store.requeue(None, ["dead"])
        elif step == "purge":
            store.purge([rng.choice(["completed", "dead", "cancelled"])], clock.now_ms() + 1)
        elif step == "reap":
            store.reap([])
        elif step == "time":
            clock.advance(rng.choice([1, 3, LEASE_S + 1]))
        check_exact(store, clock)


def totals_of(store: Store) -> dict[str, Any]:
    totals = store.totals()
    histogram: dict[str, dict[int | None, tuple[int, int]]] = {}
    for queue, buckets in totals.durations.items():
        for bucket in buckets:
            n, ms = histogram.setdefault(queue, {}).get(bucket.bound_ms, (0, 0))
            histogram[queue][bucket.bound_ms] = (n + bucket.count, ms + bucket.total_ms)
    return {
        "enqueued": totals.enqueued,
        "finished": totals.finished,
        "attempts": totals.attempts,
        "durations": histogram,
    }


def test_the_totals_count_every_event_and_only_reset_all_lowers_them(
    store: Store, clock: FakeClock, compaction: str
) -> None:
    """Every way a job is enqueued, ends an attempt or finishes is counted once; giving a job
    back, running it again, purging, expiring and resetting the jobs count nothing."""
    assert totals_of(store) == {"enqueued": {}, "finished": {}, "attempts": {}, "durations": {}}
    store.add_hook(Hook("told", ["completed"], "mail", {"command": "true", "queue": "hooks"}, 0))
    add(store, clock, {"id": "ok", "queue": "mail"}, {"id": "bad", "max_retries": 0})
    add(store, clock, {"id": "slow"}, {"id": "gone"}, {"id": "left"})
    add(store, clock, {"id": "kid", "depends_on": ["bad"]})
    claimed = claim(store, 6)
    assert {job for job, _, _ in claimed} == {"ok", "bad", "slow", "gone", "left"}
    token = {job: token for job, _, token in claimed}
    outcomes = {
        # the hook enqueues a job into `hooks`
        "ok": Outcome("ok", 1, 0, None, 7, token=token["ok"]),
        # dead: `kid` is cancelled
        "bad": Outcome("bad", 1, 3, None, 70, token=token["bad"]),
        "slow": Outcome("slow", 1, None, "timed out after 1s", 2000, token=token["slow"]),
    }
    store.finish_and_claim("r1", list(outcomes.values()), 0, None, LEASE_S)
    clock.advance(0.5)
    store.cancel(["gone"])  # running: its attempt ends, cancelled, after 500 ms
    assert store.release("r1", "left", token["left"])  # given back: no attempt ended
    add(store, clock, {"id": "orphan", "depends_on": ["bad"]})  # enqueued cancelled
    assert [(job, attempt) for job, attempt, _ in claim(store, 1)] == [("left", 1)]
    clock.advance(LEASE_S + 1)
    assert store.reap([]) == ["left"]  # worker lost: failed, to be retried
    expected = {
        "enqueued": {"mail": 1, "default": 6, "hooks": 1},
        "finished": {
            "mail": {"completed": 1},
            "default": {"dead": 1, "cancelled": 3},
        },
        "attempts": {
            "mail": {"completed": 1},
            "default": {"failed": 1, "timed_out": 1, "cancelled": 1, "lost": 1},
        },
        "durations": {
            "mail": {10: (1, 7)},
            "default": {100: (1, 70), 5000: (1, 2000), 500: (1, 500), 60000: (1, 31000)},
        },
    }
    assert totals_of(store) == expected
    assert store.requeue(["ok"], ["completed"])  # runs again: nothing counted until it ends
    assert store.purge(["completed", "dead", "cancelled"], clock.now_ms() + 1) > 0
    assert store.expire(["completed", "dead", "cancelled"], clock.now_ms() + 1, 100) == 0
    assert totals_of(store) == expected
    assert store.reset(False)["jobs"] > 0
    assert totals_of(store) == expected
    add(store, clock, {"id": "after", "queue": "mail"})
    expected["enqueued"]["mail"] += 1
    assert totals_of(store) == expected
    store.reset(True)
    assert totals_of(store) == {"enqueued": {}, "finished": {}, "attempts": {}, "durations": {}}
