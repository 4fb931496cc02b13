"""A batch's jobs settled with the retry rules their claims returned (in the pipelined exchange
on PostgreSQL, the plain one on SQLite): the batch still finishes once, with its hooks, by the
settlement of whichever job ends it, also when two runners settle its last jobs at once."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence

from queuectl import Queue
from queuectl.lifecycle import Fence, Outcome
from queuectl.store import Claim

LEASE_S = 30.0


def outcomes(claims: Sequence[Claim]) -> list[Outcome]:
    """Each claim's success, with its fence as a runner reports it."""
    ended = time.monotonic()
    found = []
    for c in claims:
        assert c.max_retries is not None  # a batch job's claim carries its retry rules
        fence = Fence(c.attempt, c.token, c.max_retries, c.no_retry_exit_codes)
        found.append(
            Outcome(c.id, c.attempt, 0, None, 5, ended_mono=ended, fence=fence, token=c.token)
        )
    return found


def batch_events(queue: Queue) -> Counter[tuple[str, str]]:
    made = [j for j in queue.list(queue="hooks") if j.made_by is not None]
    return Counter((j.env["QUEUECTL_EVENT"], j.env["QUEUECTL_EVENT_BATCH"]) for j in made)


def add_batch_hook(queue: Queue) -> None:
    queue.add_hook("hb", "batch_completed,batch_finished", {"command": "true", "queue": "hooks"})


def settle_together(queues: Sequence[Queue], held: Sequence[Sequence[Claim]]) -> None:
    """Each runner `r{i}` settles its claims, all at the same moment, each in a thread."""
    ready = threading.Barrier(len(queues))
    errors: list[BaseException] = []

    def settle(i: int) -> None:
        try:
            ready.wait(5)
            queues[i]._store.finish_and_claim(f"r{i}", outcomes(held[i]), 0, None, LEASE_S)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=settle, args=(i,)) for i in range(len(queues))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors


def test_an_array_settled_two_by_two_finishes_once(queue: Queue) -> None:
    add_batch_hook(queue)
    base, _ = queue.enqueue_array("1-7%2", {"command": "true"})
    store = queue._store
    claims = store.finish_and_claim("r1", [], 2, ["default"], LEASE_S).claims
    while claims:
        assert len(claims) <= 2
        claims = store.finish_and_claim("r1", outcomes(claims), 2, ["default"], LEASE_S).claims
    got = queue.batch(base)
    assert got["finished"]
    assert got["completed"]
    assert got["counts"]["completed"] == 7
    assert batch_events(queue) == {("batch_completed", base): 1}


def test_the_last_jobs_settled_at_once_by_two_runners_finish_their_batch(target: str) -> None:
    rounds = 8
    queues = [Queue(target), Queue(target)]
    try:
        add_batch_hook(queues[0])
        names = [queues[0].enqueue_array("1-2%2", {"command": "true"})[0] for _ in range(rounds)]
        for name in names:
            held = [
                q._store.finish_and_claim(f"r{i}", [], 1, ["default"], LEASE_S).claims
                for i, q in enumerate(queues)
            ]
            assert sorted(c.id for claims in held for c in claims) == [f"{name}.1", f"{name}.2"]
            settle_together(queues, held)
        for name in names:
            got = queues[0].batch(name)
            assert (got["finished"], got["completed"]) == (True, True), name
        assert batch_events(queues[0]) == {("batch_completed", name): 1 for name in names}
    finally:
        for q in queues:
            q.close()


def test_a_second_limited_array_starts_beside_one_counted_already(queue: Queue) -> None:
    first, _ = queue.enqueue_array("1-3%1", {"command": "true"})
    store = queue._store
    taken = store.finish_and_claim("r1", [], 5, None, LEASE_S).claims
    assert [c.id for c in taken] == [f"{first}.1"]
    # The runner's next claim counts the array in one statement; it is full.
    assert store.finish_and_claim("r1", [], 5, None, LEASE_S).claims == []
    second, _ = queue.enqueue_array("1-3%1", {"command": "true"})
    taken = store.finish_and_claim("r1", [], 5, None, LEASE_S).claims
    assert [c.id for c in taken] == [f"{second}.1"]
    taken = store.finish_and_claim("r1", outcomes(taken), 5, None, LEASE_S).claims
    assert [c.id for c in taken] == [f"{second}.2"]
