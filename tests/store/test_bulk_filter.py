"""Bulk changes by filter (POST /api/jobs/bulk, the CLI's filter forms) on both stores: what
another client changes between the search for a batch and its change."""

from __future__ import annotations

from queuectl import Queue
from queuectl.store import JobFilter
from queuectl.store.actions import Actions


def test_a_job_changed_since_it_was_found_is_changed_only_if_it_still_matches(
    queue: Queue,
) -> None:
    for name in "abcd":
        queue.enqueue(f"deploy {name}", id=name, queue="ci")
    actions = queue._store.bulk.__self__
    assert isinstance(actions, Actions)
    found = JobFilter(queues=["ci"], text="deploy")
    ids, _ = actions._bulk_match(found, 0, actions._newest_seq(), 10, 1000)
    assert sorted(ids) == ["a", "b", "c", "d"]
    # Meanwhile, other clients: one moved to another queue, one given another command, one
    # cancelled; the last left as it was.
    queue.edit("a", queue="ops")
    queue.edit("b", command="build b")
    queue.cancel("c")
    assert actions._bulk_hold(ids, ["pending", "failed"], found) == 1
    assert [queue.get(i).held for i in "abcd"] == [False, False, False, True]
    assert actions._bulk_delete(ids, ["cancelled"], found) == 1  # c still matches: deleted
    assert queue._store.get("c") is None
    assert actions._bulk_cancel(["a", "b", "d"], ["pending"], found) == 1
    assert [queue.get(i).state for i in "abd"] == ["pending", "pending", "cancelled"]
    assert actions._bulk_retry(["a", "b", "d"], ["cancelled"], found) == 1
    assert queue.get("d").state == "pending"


def test_every_job_a_filter_matches_is_changed_once_over_many_batches(queue: Queue) -> None:
    queue.enqueue_many([{"command": f"render {n}", "queue": "gpu"} for n in range(120)])
    queue.enqueue_many([{"command": f"encode {n}", "queue": "gpu"} for n in range(30)])
    seen: list[tuple[int, int]] = []
    matched, changed = queue._store.bulk(
        "hold",
        JobFilter(queues=["gpu"], text="render"),
        batch=7,
        progress=lambda m, c: seen.append((m, c)),
    )
    assert (matched, changed) == (120, 120)
    assert len(seen) >= 120 // 7
    assert len(queue.list(held=True, limit=None)) == 120
    again = queue._store.bulk(
        "release", JobFilter(queues=["gpu"], text="render", held=True), batch=7
    )
    assert again == (120, 120)
    assert queue.list(held=True, limit=None) == []
