"""Batches and arrays through the Python API on both stores: counts kept as jobs change
state, arrays of every SPEC form, bulk actions by batch, and the claim under a batch's limit."""

from __future__ import annotations

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError, NotFoundError
from queuectl.lifecycle import Fence, Outcome
from queuectl.models import ALL_LIMITS, limits_mask
from queuectl.store import Claim


def claim(queue: Queue, owner: str, want: int = 50) -> list[str]:
    return sorted(c.id for c in queue._store.finish_and_claim(owner, [], want, None, 30).claims)


def test_batch_counts_follow_every_change(queue: Queue) -> None:
    ids = [queue.enqueue("true", batch="b").id for _ in range(3)]
    queue.enqueue("true")  # no batch: not counted in any
    other = queue.enqueue_many([{"command": "true", "batch": "c"}])[0].id
    assert queue.batch("b")["counts"]["pending"] == 3
    assert queue.batch("b")["total"] == 3
    assert queue.batch("c")["total"] == 1
    assert [b["name"] for b in queue.batches()] == ["b", "c"]
    queue.cancel(ids[0])
    got = queue.batch("b")
    assert (got["counts"]["pending"], got["counts"]["cancelled"], got["done"]) == (2, 1, 1)
    assert not got["finished"]
    assert got["last_end"] is not None
    assert queue.cancel_all(batch="b") == 2
    got = queue.batch("b")
    assert got["finished"]
    assert not got["completed"]
    assert got["counts"]["cancelled"] == 3
    assert queue.get(other).state == "pending"  # another batch is untouched
    assert sorted(queue.requeue(batch="b")) == sorted(ids)
    assert queue.batch("b")["counts"]["pending"] == 3
    assert not queue.batch("b")["finished"]
    # Generated ids are not ordered within a millisecond: the set, not the order.
    assert sorted(j.id for j in queue.list(batch="b")) == sorted(ids)
    assert queue.get(ids[0]).to_dict()["batch"] == "b"


def test_unknown_batch_is_refused(queue: Queue) -> None:
    with pytest.raises(NotFoundError):
        queue.batch("nope")
    with pytest.raises(NotFoundError):
        queue.cancel_all(batch="nope")
    with pytest.raises(NotFoundError):
        queue.set_batch("nope", 3)


@pytest.mark.parametrize(
    ("spec", "indices", "limit"),
    [
        ("1-5", [1, 2, 3, 4, 5], None),
        ("0-8:2", [0, 2, 4, 6, 8], None),
        ("0-9:4", [0, 4, 8], None),
        ("1,5,9", [1, 5, 9], None),
        ("7", [7], None),
        ("1-3,10", [1, 2, 3, 10], None),
        ("1-4%2", [1, 2, 3, 4], 2),
        ("2,4%1", [2, 4], 1),
    ],
)
def test_arrays_of_every_form(queue: Queue, spec: str, indices: list[int], limit: int) -> None:
    base, count = queue.enqueue_array(spec, {"command": "echo x", "id": "arr", "queue": "q"})
    assert (base, count) == ("arr", len(indices))
    jobs = {job.id: job for job in queue.list(batch="arr")}
    assert set(jobs) == {f"arr.{i}" for i in indices}
    for i in indices:
        job = jobs[f"arr.{i}"]
        assert job.env["QUEUECTL_ARRAY_INDEX"] == str(i)
        assert (job.batch, job.queue, job.command) == ("arr", "q", "echo x")
    got = queue.batch("arr")
    assert got["total"] == len(indices)
    assert got["concurrency"] == limit


def test_array_base_is_generated_without_an_id(queue: Queue) -> None:
    base, count = queue.enqueue_array("1-2", {"command": "true"})
    assert count == 2
    assert {j.id for j in queue.list(batch=base)} == {f"{base}.1", f"{base}.2"}


@pytest.mark.parametrize(
    "spec", ["", "a-b", "5-1", "1-10:0", "1-10%0", "1-10%", "1,,2", "-3", "1,1", "1-4,3"]
)
def test_bad_array_specs_are_refused_and_nothing_is_enqueued(queue: Queue, spec: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        queue.enqueue_array(spec, {"command": "true", "id": "arr"})
    assert "\n" not in str(refused.value)
    assert queue.list() == []


def test_a_duplicate_array_id_enqueues_none(queue: Queue) -> None:
    queue.enqueue("true", id="arr.3")
    with pytest.raises(Exception, match=r"arr\.3"):
        queue.enqueue_array("1-5", {"command": "true", "id": "arr"})
    assert [j.id for j in queue.list()] == ["arr.3"]


def test_a_batch_limit_holds_across_claimers(queue: Queue) -> None:
    queue.enqueue_array("1-6%2", {"command": "true", "id": "a"})
    free = [queue.enqueue("true").id for _ in range(3)]
    first = claim(queue, "r1")
    assert set(free) <= set(first)
    assert len([i for i in first if i.startswith("a.")]) == 2
    assert [i for i in claim(queue, "r2") if i.startswith("a.")] == []
    assert queue.batch("a")["counts"]["processing"] == 2
    # the limit raised: more start; removed: every one may
    queue.set_batch("a", 3)
    assert len(claim(queue, "r2")) == 1
    queue.set_batch("a", "none")
    assert len(claim(queue, "r3")) == 3
    assert queue.batch("a")["counts"]["processing"] == 6


def test_a_batch_limit_applies_to_jobs_joining_it_later(queue: Queue) -> None:
    queue.enqueue_array("1-2%1", {"command": "true", "id": "a"})
    late = queue.enqueue("true", batch="a").id
    assert len(claim(queue, "r1")) == 1
    assert claim(queue, "r2") == []
    assert queue.get(late).state == "pending"


def test_a_batch_limit_and_a_queue_limit_both_hold(queue: Queue) -> None:
    queue.set_queue("q", concurrency=1)
    queue.enqueue_array("1-4%3", {"command": "true", "id": "a", "queue": "q"})
    assert len(claim(queue, "r1")) == 1
    assert claim(queue, "r2") == []


def test_a_limited_batch_keeps_to_the_runners_limits_and_tags(queue: Queue) -> None:
    queue.enqueue_array("1-2%2", {"command": "true", "id": "mem", "memory": "64M"})
    queue.enqueue_array("1-2%2", {"command": "true", "id": "gpu", "requires": ["gpu"]})

    def take(owner: str, enforces: int, tags: list[str]) -> list[str]:
        store = queue._store
        got = store.finish_and_claim(owner, [], 50, None, 30, enforces=enforces, tags=tags)
        return sorted(c.id for c in got.claims)

    no_memory = ALL_LIMITS & ~limits_mask(["memory"])
    # a runner that enforces no memory limit and has no tag takes neither batch's jobs
    assert take("r1", no_memory, []) == []
    assert take("r2", ALL_LIMITS, []) == ["mem.1", "mem.2"]
    assert take("r3", no_memory, ["gpu"]) == ["gpu.1", "gpu.2"]


def _settle_as_a_runner(queue: Queue, claim_: Claim, exit_code: int = 0) -> None:
    """Settle a claim as a runner does: with the retry rules the claim gave."""
    fence = None
    if claim_.max_retries is not None:
        rules = (claim_.max_retries, claim_.no_retry_exit_codes)
        fence = Fence(claim_.attempt, claim_.token, *rules)
    done = Outcome(claim_.id, claim_.attempt, exit_code, None, 5, token=claim_.token, fence=fence)
    queue._store.finish_and_claim("r1", [done], 0, None, 30)


def test_a_batch_finished_by_a_runner_settlement_lets_its_dependants_go(queue: Queue) -> None:
    queue.enqueue("true", batch="b", id="b1")
    queue.enqueue("true", after_batch=["b"], id="after")
    queue.enqueue("true", batch="c", id="c1", max_retries=0)
    queue.enqueue("true", after_batch=["c"], id="doomed")
    claims = {c.id: c for c in queue._store.finish_and_claim("r1", [], 50, None, 30).claims}
    assert sorted(claims) == ["b1", "c1"]
    _settle_as_a_runner(queue, claims["b1"])
    assert queue.batch("b")["completed"]
    _settle_as_a_runner(queue, claims["c1"], exit_code=3)
    assert queue.get("doomed").state == "cancelled"
    assert claim(queue, "r2") == ["after"]
