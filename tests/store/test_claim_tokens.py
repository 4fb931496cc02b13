"""Claim tokens (migration 0011): every write about an attempt is fenced by its claim's token,
which never repeats for a job, though attempt numbers start again after a DLQ retry or a
requeue; a cancelled attempt holds its lease (its lock, its slot, its job) until its runner
says its processes are gone, or is reaped. On the fake clock, on every backend."""

from __future__ import annotations

from typing import Any

from queuectl import Queue
from queuectl.explain import explain_job
from queuectl.models import new_job
from queuectl.store import Store
from tests.support.clock import FakeClock
from tests.support.fake_runner import claims, ended, gone

LEASE_S = 30.0


def add(store: Store, **job: Any) -> str:
    return store.enqueue_many([new_job({"command": "true", **job})])[0].id


def test_a_stale_result_for_an_earlier_claim_of_the_same_attempt_number_is_refused(
    store: Store, clock: FakeClock
) -> None:
    job_id = add(store, max_retries=0, id="a")
    (first,) = claims(store)
    clock.advance(LEASE_S + 1)
    assert store.reap([], exclude="r2") == ["a"]  # r1 froze past its lease: worker lost, dead
    assert store.requeue(["a"], ["dead"]) == ["a"]  # `dlq retry`
    (second,) = claims(store)  # the same runner, the same attempt number
    assert (second.attempt, first.attempt) == (1, 1)
    assert second.token > first.token
    # r1 wakes up and reports its first claim: refused, however alike the two claims look
    late = store.finish_and_claim("r1", [ended(first, 0, b"stale\n")], 0, None, LEASE_S)
    assert late.settled == {}
    assert store.save_output("r1", job_id, first.token, b"stale\n") is False
    assert store.release("r1", job_id, first.token) is False
    job = store.get(job_id)
    assert job is not None
    assert (job.state, job.lease_owner) == ("processing", "r1")
    done = store.finish_and_claim("r1", [ended(second, 0, b"fresh\n")], 0, None, LEASE_S)
    assert done.settled[job_id].state == "completed"
    history = store.history(job_id)
    assert [(a.attempt, a.error, a.token) for a in history] == [
        (1, "worker lost", first.token),
        (1, None, second.token),
    ]
    assert [o.data for o in (store.output(job_id, 1), store.output(job_id, 2)) if o] == [
        b"",
        b"fresh\n",
    ]


def test_every_attempt_of_a_requeued_job_keeps_its_own_history_row(store: Store) -> None:
    job_id = add(store, id="a", max_retries=0)
    taken = []
    for n in range(3):
        (c,) = claims(store)
        taken.append(c)
        done = store.finish_and_claim("r1", [ended(c, n, f"run {n}\n".encode())], 0, None, 30)
        assert job_id in done.settled
        if n < 2:
            assert store.requeue([job_id], ["completed", "dead"]) == [job_id]
    # each earlier claim's late writes fall on its own row, or nowhere: never on a later one
    for c in taken:
        store.finish_and_claim("r1", [ended(c, 9, b"late\n")], 0, None, LEASE_S)
        store.save_output("r1", job_id, c.token, b"late\n")
    history = store.history(job_id)
    assert [(a.attempt, a.exit_code) for a in history] == [(1, 0), (1, 1), (1, 2)]
    assert len({a.token for a in history}) == 3
    outputs = [store.output(job_id, n) for n in (1, 2, 3)]
    assert [o.data for o in outputs if o] == [b"run 0\n", b"run 1\n", b"run 2\n"]


def test_each_attempt_of_a_cancelled_and_requeued_job_keeps_its_own_output(
    store: Store,
) -> None:
    job_id = add(store, id="a")
    (first,) = claims(store)
    assert store.save_output("r1", job_id, first.token, b"first\n")
    store.cancel(["a"])
    # what the cancelled attempt printed before it was killed is still saved
    assert store.save_output("r1", job_id, first.token, b"first, till killed\n")
    assert store.requeue(["a"], ["cancelled"]) == ["a"]
    (second,) = store.finish_and_claim("r1", [gone(first)], 1, None, LEASE_S).claims
    assert store.save_output("r1", job_id, second.token, b"second\n")
    outputs = [store.output(job_id, n) for n in (1, 2)]
    assert [o.data for o in outputs if o] == [b"first, till killed\n", b"second\n"]


def test_a_cancelled_job_requeued_waits_for_its_attempt_to_be_gone(store: Store) -> None:
    add(store, id="a")
    (first,) = claims(store)
    store.cancel(["a"])
    assert store.requeue(["a"], ["cancelled"]) == ["a"]
    assert claims(store, owner="r2") == []
    job = store.get("a")
    assert job is not None
    assert (job.state, job.lease_owner) == ("pending", "r1")
    # another runner's word, or a late result of the attempt, lets nothing go
    store.finish_and_claim("r2", [gone(first)], 0, None, LEASE_S)
    store.finish_and_claim("r1", [ended(first, 0, b"")], 0, None, LEASE_S)
    assert claims(store, owner="r2") == []
    exchange = store.finish_and_claim("r1", [gone(first)], 1, None, LEASE_S)
    assert exchange.settled == {}
    (second,) = exchange.claims
    assert (second.id, second.attempt, second.token) == ("a", 1, first.token + 1)


def test_a_cancelled_attempt_holds_its_lock_and_slot_until_it_is_gone(store: Store) -> None:
    store.set_limits("renders", 1, None)
    locked = [add(store, lock="prod", id=f"l{n}") for n in range(2)]
    slotted = [add(store, queue="renders", id=f"s{n}") for n in range(2)]
    held = {c.id: c for c in claims(store, want=4)}
    assert sorted(held) == ["l0", "s0"]
    store.cancel(["l0", "s0"])
    assert claims(store, owner="r2", want=4) == []
    assert store.lock_holder("prod") == "l0"
    assert store.queue_settings()["renders"].running == 1
    exchange = store.finish_and_claim("r1", [gone(held["l0"]), gone(held["s0"])], 0, None, 30)
    assert exchange.settled == {}
    assert sorted(c.id for c in claims(store, owner="r2", want=4)) == [locked[1], slotted[1]]


def test_a_dead_runners_cancelled_attempts_are_let_go(store: Store, clock: FakeClock) -> None:
    add(store, id="a", lock="prod")
    add(store, id="b", lock="prod")
    claims(store)
    store.cancel(["a"])
    assert claims(store, owner="r2") == []
    assert store.reap(["r1"], exclude="r2") == []  # nothing to recover: a is cancelled
    assert [c.id for c in claims(store, owner="r2")] == ["b"]
    # and one whose runner stopped renewing its lease (another host, frozen)
    store.cancel(["b"])
    assert store.requeue(["b"], ["cancelled"]) == ["b"]
    assert claims(store, owner="r3") == []
    store.heartbeat("r2", LEASE_S)  # a live runner renews its cancelled attempt's lease too
    clock.advance(LEASE_S - 1)
    store.reap([], exclude="r3")
    assert claims(store, owner="r3") == []
    clock.advance(2)
    store.reap([], exclude="r3")
    assert [c.id for c in claims(store, owner="r3")] == ["b"]


def test_a_heartbeat_renews_the_lease_of_a_cancelled_attempt_still_dying(
    store: Store, clock: FakeClock
) -> None:
    add(store, id="a", lock="prod")
    add(store, id="b", lock="prod")
    claims(store)
    store.cancel(["a"])
    clock.advance(LEASE_S - 1)
    store.heartbeat("r1", LEASE_S)  # r1 still kills a's processes
    clock.advance(2)  # past the lease of a's claim, not the one renewed
    store.reap([], exclude="r2")
    assert claims(store, owner="r2") == []
    assert store.lock_holder("prod") == "a"


def test_explain_says_a_requeued_job_waits_for_its_cancelled_attempt(
    target: str, clock: FakeClock
) -> None:
    queue = Queue(target, clock=clock)
    try:
        job_id = queue.enqueue("true").id
        (first,) = claims(queue._store)
        queue.cancel(job_id)
        assert "still killing its processes" in explain_job(queue, job_id)["message"]
        queue.requeue(job_id)
        assert explain_job(queue, job_id)["reason"] == "waiting_for_previous_attempt"
        queue._store.finish_and_claim("r1", [gone(first)], 0, None, LEASE_S)
        assert explain_job(queue, job_id)["reason"] != "waiting_for_previous_attempt"
    finally:
        queue.close()


def test_owned_jobs_names_the_dying_attempts_too_with_their_own_numbers(store: Store) -> None:
    add(store, id="a")
    add(store, id="b")
    claims(store, want=2)
    store.cancel(["a"])
    store.requeue(["a"], ["cancelled"])  # attempts 0 now; its dying processes carry 1
    assert store.owned_jobs("r1") == {"a": 1, "b": 1}
