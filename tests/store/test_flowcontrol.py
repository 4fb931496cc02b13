"""Flow control in the store (SPEC 9.2): concurrency, sliding rate windows and locks, on the
fake clock, and a concurrency limit and a lock that hold with several claimers at once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

import pytest

from queuectl import Queue
from queuectl.lifecycle import Fence, Outcome
from queuectl.models import new_job
from queuectl.store import Claim, Exchange, Store
from tests.support import fake_runner
from tests.support.clock import FakeClock
from tests.support.fake_runner import ended

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def enqueue(store: Store, count: int, **fields: object) -> list[str]:
    jobs = store.enqueue_many([new_job({"command": "true", **fields}) for _ in range(count)])
    return [job.id for job in jobs]


def claim(
    store: Store,
    want: int = 10,
    outcomes: Sequence[Claim] = (),
    owner: str = "r1",
    gone: Sequence[Claim] = (),
) -> Exchange:
    """Report `outcomes` completed and the processes of the cancelled `gone` ended, and claim."""
    reported = [*(ended(c, 0, duration_ms=1) for c in outcomes), *map(fake_runner.gone, gone)]
    return fake_runner.exchange(store, reported, want, None, owner, 300)


def test_concurrency_runs_exactly_the_limit(store: Store) -> None:
    store.set_limits("renders", 2, None)
    enqueue(store, 6, queue="renders")
    others = enqueue(store, 3)
    first = claim(store).claims
    assert sorted(c.queue for c in first) == ["default"] * 3 + ["renders"] * 2
    assert claim(store).claims == []
    renders = [c for c in first if c.queue == "renders"]
    again = claim(store, outcomes=renders[:1]).claims
    assert [c.queue for c in again] == ["renders"]
    # A cancelled job's slot is free once its runner says its processes are gone.
    store.cancel([renders[1].id])
    assert claim(store).claims == []
    assert [c.queue for c in claim(store, gone=renders[1:2]).claims] == ["renders"]
    assert claim(store).claims == []
    assert {c.id for c in first} >= set(others)


def test_a_lost_lease_frees_its_slot_when_recovered(store: Store, clock: FakeClock) -> None:
    store.set_limits("renders", 1, None)
    enqueue(store, 2, queue="renders")
    lost = claim(store, owner="gone").claims
    assert len(lost) == 1
    assert claim(store).claims == []
    clock.advance(301)
    assert store.reap([]) == [lost[0].id]
    assert len(claim(store).claims) == 1


def test_rate_window_slides(store: Store, clock: FakeClock) -> None:
    store.set_limits("api", None, (3, 10_000))
    enqueue(store, 10, queue="api")
    t0 = clock.now_ms()
    assert len(claim(store, want=2).claims) == 2  # two starts at t0
    clock.advance(5)
    exchange = claim(store)
    assert len(exchange.claims) == 1  # the third, at t0 + 5 s: the window is full
    assert exchange.next_due_ms == t0 + 10_000  # when the two starts of t0 leave it
    clock.advance(4.999)
    assert claim(store).claims == []
    clock.advance(0.001)
    # A fixed window would allow three now; the sliding one still holds the start of t0 + 5 s.
    exchange = claim(store)
    assert len(exchange.claims) == 2
    assert exchange.next_due_ms == t0 + 15_000
    clock.advance(5)
    assert len(claim(store).claims) == 1


def test_locks_run_one_at_a_time_in_claim_order(store: Store) -> None:
    deploys = enqueue(store, 3, lock="prod")
    other = enqueue(store, 2, lock="staging")
    free = enqueue(store, 2)
    first = claim(store).claims
    assert sorted(c.id for c in first) == sorted([deploys[0], other[0], *free])
    assert claim(store).claims == []
    done = [c for c in first if c.id == deploys[0]]
    again = claim(store, outcomes=done).claims
    assert [c.id for c in again] == [deploys[1]]
    # A cancelled holder's lock is free once its runner says its processes are gone.
    (holder,) = again
    store.cancel([deploys[1]])
    assert claim(store).claims == []
    assert [c.id for c in claim(store, gone=[holder]).claims] == [deploys[2]]


def test_a_lock_inside_a_limited_queue(store: Store) -> None:
    store.set_limits("renders", 2, None)
    locked = enqueue(store, 2, queue="renders", lock="gpu")
    plain = enqueue(store, 2, queue="renders")
    first = claim(store).claims
    assert sorted(c.id for c in first) == sorted([locked[0], plain[0]])


def test_settings_and_explain_values(target: str, store: Store) -> None:
    queue = Queue(target, store.clock)
    try:
        shown = queue.set_queue("empty", concurrency="3", rate="10/1m")
        assert shown["concurrency"] == 3
        assert shown["rate"] == {"jobs": 10, "seconds": 60}
        queue.set_queue("empty", concurrency=None)
        assert queue.queues()["empty"]["rate"] == {"jobs": 10, "seconds": 60}
        assert queue.queues()["empty"]["concurrency"] is None
        queue.set_queue("empty", rate="none")
        assert queue.queues()["empty"]["rate"] is None
    finally:
        queue.close()


CLAIMER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from queuectl.lifecycle import Fence, Outcome
from queuectl.store import JobFilter, open_store
from tests.support.clock import FakeClock

target, owner, want = sys.argv[2], sys.argv[3], int(sys.argv[4])
store = open_store(target, FakeClock())
sys.stdin.readline()  # the start signal: every process starts claiming at once
outcomes = []
while True:
    claims = store.finish_and_claim(owner, outcomes, want, None, 300).claims
    counts = store.counts()
    running = {q: per.get("processing", 0) for q, per in counts.items()}
    locked = sum(1 for j in store.list_jobs(JobFilter(states=["processing"])).jobs if j.lock)
    print(running.get("limited", 0), locked, flush=True)
    if not claims and not any(per.get("pending") for per in counts.values()):
        break
    time.sleep(0.002)  # hold the jobs a moment, so an excess would be seen
    # Settled as a runner does, with the rules the claim returned (PostgreSQL then settles
    # and claims in one round trip, the claim under limits counted after the queue is locked).
    outcomes = [
        Outcome(
            c.id, c.attempt, 0, None, 1, fence=Fence(c.attempt, c.token, c.max_retries or 0, []), token=c.token
        )
        for c in claims
    ]
store.close()
"""


@pytest.mark.parametrize("claimers", [8])
@pytest.mark.parametrize("locks", [True, False])
def test_limits_hold_with_claimers_racing(
    target: str, store: Store, claimers: int, locks: bool
) -> None:
    """Several claimers in a tight loop: never more than the limit running, nor two jobs of
    one lock; and the limit is reached (the count is not held below it). Without jobs that
    take a lock, the claims under the limit are counted in one statement."""
    store.set_limits("limited", 2, None)
    enqueue(store, 400, queue="limited")
    if locks:
        enqueue(store, 30, lock="one")  # a lock in a queue without limits, and in the limited one
        enqueue(store, 30, lock="one", queue="limited")
    enqueue(store, 60)
    want = "1" if locks else "2"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, ROOT, target, f"claimer-{n}", want],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(claimers)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    seen: list[tuple[int, int]] = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        seen += [(int(a), int(b)) for a, b in (line.split() for line in out.splitlines())]
    assert max(running for running, _ in seen) == 2
    assert max(locked for _, locked in seen) == (1 if locks else 0)
    assert all(per.get("pending", 0) == 0 for per in store.counts().values())


@pytest.mark.backends("postgres")
@pytest.mark.parametrize("counted_before", [False, True])
def test_a_claim_under_a_limit_waits_for_a_claim_in_progress(
    target: str, store: Store, counted_before: bool
) -> None:
    """Another claimer's transaction has locked the limited queue and taken its two slots,
    not yet committed: a claim now waits for it, then counts its jobs and takes none of the
    queue. Without the queue lock it would count none running and take two more. Both claims:
    the first of a store (the general flow claim), and one that counts the queues its last
    flow claim found limited, sent with its settlements in one round trip."""
    import threading

    import psycopg

    store.set_limits("limited", 2, None)
    enqueue(store, 10, queue="limited")
    if counted_before:  # a first exchange finds the limit; its jobs are settled
        taken = store.finish_and_claim("r1", [], 2, None, 300).claims
        done = [
            Outcome(
                c.id,
                c.attempt,
                0,
                None,
                1,
                fence=Fence(c.attempt, c.token, c.max_retries or 0, []),
                token=c.token,
            )
            for c in taken
        ]
        assert store.finish_and_claim("r1", done, 0, None, 300).settled.keys() == {
            c.id for c in taken
        }
    with psycopg.connect(target) as other:
        other.execute("SELECT name FROM queues WHERE name = 'limited' FOR UPDATE")
        other.execute(
            "UPDATE jobs SET state = 'processing', lease_owner = 'other', attempts = 1"
            " WHERE seq IN (SELECT seq FROM jobs WHERE queue = 'limited' AND state = 'pending'"
            " ORDER BY seq LIMIT 2)"
        )
        claims: list[Claim] = []
        claimer = threading.Thread(
            target=lambda: claims.extend(store.finish_and_claim("r1", [], 2, None, 300).claims)
        )
        claimer.start()
        claimer.join(0.5)
        assert claimer.is_alive(), f"claimed {claims} beside an uncommitted claim"
        other.commit()
        claimer.join(10)
    assert claims == []


def test_limits_set_or_lifted_between_two_claims_apply_to_the_next(store: Store) -> None:
    """A runner's claims count the queues its last flow claim found limited (PostgreSQL, in
    the round trip of its settlements): a limit set, changed or lifted since applies at once."""

    def queues_of(claims: Sequence[Claim]) -> list[str]:
        return sorted(c.queue for c in claims)

    store.set_limits("limited", 2, None)
    enqueue(store, 10, queue="limited")
    first = claim(store, 10)
    assert queues_of(first.claims) == ["limited"] * 2
    enqueue(store, 5, queue="other")
    store.set_limits("other", 1, None)  # a new limit, on a queue the last claim did not count
    second = claim(store, 10, first.claims)
    assert queues_of(second.claims) == ["limited"] * 2 + ["other"]
    store.set_limits("limited", 3, None)  # raised
    third = claim(store, 10, second.claims)
    assert queues_of(third.claims) == ["limited"] * 3 + ["other"]
    store.set_limits("limited", None, None)  # lifted
    store.set_paused("other", True)
    fourth = claim(store, 10, third.claims)
    assert queues_of(fourth.claims) == ["limited"] * 3  # what is left of it


def test_two_limits_set_at_once_are_both_kept(target: str) -> None:
    # Each `queue set` writes only the limit it was given: one that read the row and wrote it
    # back whole would put back the other's limit as it was before.
    import threading

    tries = 40
    queues = [Queue(target), Queue(target)]
    try:
        barrier = threading.Barrier(2)

        def set_each(queue: Queue, limit: dict[str, object]) -> None:
            for n in range(tries):
                barrier.wait(timeout=30)
                queue.set_queue(f"q{n}", **limit)

        setters = [
            threading.Thread(target=set_each, args=(queues[0], {"concurrency": 1})),
            threading.Thread(target=set_each, args=(queues[1], {"rate": "5/1m"})),
        ]
        for setter in setters:
            setter.start()
        for setter in setters:
            setter.join(timeout=120)
        settings = queues[0].queues()
        lost = [
            name
            for name in (f"q{n}" for n in range(tries))
            if (settings[name]["concurrency"], settings[name]["rate"])
            != (1, {"jobs": 5, "seconds": 60})
        ]
        assert lost == [], {name: settings[name] for name in lost}
    finally:
        for queue in queues:
            queue.close()
