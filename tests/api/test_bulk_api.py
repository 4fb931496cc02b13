"""POST /api/jobs/bulk and the CLI's bulk forms, on both stores."""

from __future__ import annotations

import json
from typing import Any

from queuectl import Queue
from queuectl.store import JobFilter
from tests.api.conftest import claim, run_once


def bulk(client: Any, **body: Any) -> Any:
    return client.post("/api/jobs/bulk", json=body)


def test_bulk_cancel_matches_by_filter_and_changes_what_it_may(client: Any, queue: Queue) -> None:
    done = run_once(queue, "deploy d", 0, id="d", queue="ci")
    queue.enqueue("deploy a", id="a", queue="ci")
    queue.enqueue("deploy b", id="b", queue="ci")
    queue.enqueue("deploy c", id="c", queue="ops")
    filt = {"queue": ["ci"], "search": "deploy"}
    counted = bulk(client, filter=filt, action="cancel", dry_run=True)
    assert counted.status_code == 200
    assert counted.json() == {"matched": 3}
    assert queue.get("a").state == "pending"  # a dry run changes nothing
    got = bulk(client, filter=filt, action="cancel")
    assert got.json() == {"matched": 3, "changed": 2}  # the completed one: matched, not changed
    assert [queue.get(i).state for i in "abc"] == ["cancelled", "cancelled", "pending"]
    assert queue.get(done).state == "completed"


def test_bulk_retry_and_delete_by_state(client: Any, queue: Queue) -> None:
    dead = [run_once(queue, "false", 1, queue="q") for _ in range(3)]
    queue.enqueue("sleep 1", id="waiting", queue="q")
    got = bulk(client, filter={"state": ["dead"]}, action="retry")
    assert got.json() == {"matched": 3, "changed": 3}
    assert {queue.get(i).state for i in dead} == {"pending"}
    queue.cancel("waiting")
    got = bulk(client, filter={"queue": ["q"]}, action="delete")
    assert got.json() == {"matched": 4, "changed": 1}  # only the finished one is deleted
    assert [j.id for j in queue.list()] == list(reversed(dead))


def test_bulk_refusals(client: Any, queue: Queue) -> None:
    queue.enqueue("true", id="x")
    empty = bulk(client, filter={}, action="cancel")
    assert empty.status_code == 422
    assert "empty filter" in empty.json()["error"]
    assert queue.get("x").state == "pending"
    everything = bulk(client, filter={}, action="cancel", all=True)
    assert everything.json() == {"matched": 1, "changed": 1}
    assert bulk(client, filter={"state": ["nope"]}, action="cancel").status_code == 422
    assert bulk(client, filter={"state": ["dead"]}, action="explode").status_code == 422
    assert bulk(client, filter={"owner": "me"}, action="cancel").status_code == 422


def test_bulk_retry_of_thousands_commits_batch_by_batch(queue: Queue) -> None:
    """A bulk retry of many dead jobs commits each batch: a runner claims between batches,
    and the jobs retried so far are pending for it to claim before the change ends."""
    store = queue._store
    dead = [run_once(queue, "false", 1, queue="dead") for _ in range(3)]
    # Many dead jobs at once, through the store's own settle path, without 3000 enqueues of
    # one at a time: enqueue them, claim them all, then fail them all.
    ids = [
        job.id
        for job in queue.enqueue_many(
            [{"command": "false", "queue": "bulk", "max_retries": 0} for _ in range(3000)]
        )
    ]
    claimed = claim(queue, 3000, ["bulk"])
    assert len(claimed) == 3000
    from queuectl.lifecycle import Outcome
    from tests.api.conftest import OWNER
    from tests.support.claims import token_of

    outcomes = [Outcome(c.id, 1, 1, None, 10, None, token=token_of(store, c.id)) for c in claimed]
    store.finish_and_claim(OWNER, outcomes, 0, None, 30)
    assert queue.count("dead", "bulk") == 3000
    seen: list[tuple[int, int, int]] = []

    def during(matched: int, changed: int) -> None:
        # Between batches: another connection sees the retried jobs and claims one.
        with Queue(queue.describe()["target"]) as other:
            got = other._store.finish_and_claim("other-runner", [], 1, ["bulk"], 30).claims
            seen.append((matched, changed, len(got)))

    matched, changed = store.bulk(
        "retry", JobFilter(["dead"], ["bulk"]), batch=500, progress=during
    )
    assert (matched, changed) == (3000, 3000)
    # Batches of at most 500, sized by how long each took: every one counted, all retried.
    steps = [b[0] - a[0] for a, b in zip([(0, 0, 0), *seen], seen, strict=False)]
    assert all(0 < step <= 500 for step in steps), steps
    assert seen[-1][:2] == (3000, 3000)
    assert all(s[0] == s[1] for s in seen)
    assert all(s[2] == 1 for s in seen)  # a claim went through between every two batches
    assert queue.count("dead", "bulk") == 0
    assert {queue.get(i).state for i in dead} == {"dead"}  # another queue's: untouched
    assert len(ids) == 3000


def test_cli_bulk_forms(cli: Any, queue: Queue) -> None:
    dead = run_once(queue, "make deploy", 1, id="dead-1", queue="ci")
    queue.enqueue("make deploy", id="p1", queue="ci")
    queue.enqueue("make deploy", id="p2", queue="ops")
    done = cli("cancel", "--state", "pending", "--queue", "ci")
    assert done.returncode == 0, done.stderr
    assert "cancelled 1 job" in done.stderr
    assert [queue.get(i).state for i in ("p1", "p2")] == ["cancelled", "pending"]
    done = cli("requeue", "--search", "deploy", "--state", "dead", "--state", "cancelled")
    assert done.returncode == 0, done.stderr
    assert "requeued 2 jobs" in done.stderr
    assert [queue.get(i).state for i in (dead, "p1")] == ["pending", "pending"]
    nothing = cli("requeue", "--search", "no-such-text")
    assert nothing.returncode == 0
    assert "no job matches" in nothing.stderr
    mixed = cli("cancel", "--all", "--state", "failed")
    assert mixed.returncode == 2
    assert "not several" in mixed.stderr
    both = cli("requeue", "p1", "--state", "dead")
    assert both.returncode == 2
    assert "not both" in both.stderr


def test_bulk_hold_and_release_by_filter(client: Any, queue: Queue) -> None:
    dead = run_once(queue, "render frames", 1, id="dead", queue="gpu")
    queue.enqueue("render a", id="a", queue="gpu")
    queue.enqueue("render b", id="b", queue="gpu")
    queue.enqueue("render c", id="c", queue="cpu")
    queue.enqueue("encode d", id="d", queue="gpu")
    filt = {"queue": ["gpu"], "search": "render"}
    assert bulk(client, filter=filt, action="hold", dry_run=True).json() == {"matched": 3}
    got = bulk(client, filter=filt, action="hold")
    assert got.json() == {"matched": 3, "changed": 2}  # the dead one: matched, not held
    assert [queue.get(i).held for i in ("a", "b", "c", "d", dead)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    again = bulk(client, filter=filt, action="hold")
    assert again.json() == {"matched": 3, "changed": 0}  # held already: none twice
    held = bulk(client, filter={"held": True}, action="release", dry_run=True)
    assert held.json() == {"matched": 2}
    got = bulk(client, filter={"queue": ["gpu"], "held": True}, action="release")
    assert got.json() == {"matched": 2, "changed": 2}
    assert not any(queue.get(i).held for i in ("a", "b"))


def test_bulk_filters_by_batch(client: Any, queue: Queue) -> None:
    for n in range(3):
        queue.enqueue("true", id=f"in-{n}", batch="nightly")
    queue.enqueue("true", id="out", queue="default")
    counted = bulk(client, filter={"batch": "nightly"}, action="cancel", dry_run=True)
    assert counted.json() == {"matched": 3}
    got = bulk(client, filter={"batch": "nightly", "search": "in-1"}, action="hold")
    assert got.json() == {"matched": 1, "changed": 1}
    got = bulk(client, filter={"batch": "nightly"}, action="cancel")
    assert got.json() == {"matched": 3, "changed": 3}
    assert queue.get("out").state == "pending"
    assert bulk(client, filter={"batch": "bad name!"}, action="cancel").status_code == 422


def test_cli_hold_and_release_by_filter(cli: Any, queue: Queue) -> None:
    queue.enqueue("render a", id="a", queue="gpu")
    queue.enqueue("render b", id="b", queue="gpu")
    queue.enqueue("render c", id="c", queue="cpu")
    dead = run_once(queue, "render d", 1, id="d", queue="old")
    held = cli("hold", "--search", "render", "--queue", "gpu")
    assert held.returncode == 0, held.stderr
    assert held.stderr == "held 2 jobs\n"
    assert [queue.get(i).held for i in ("a", "b", "c", dead)] == [True, True, False, False]
    held = cli("hold", "--search", "render")
    assert held.stderr == "held 1 job; 3 matched in a state it does not apply to\n"
    released = cli("release", "--state", "pending", "--queue", "gpu")
    assert released.returncode == 0, released.stderr
    assert released.stderr == "released 2 jobs\n"  # only held jobs are matched
    assert [queue.get(i).held for i in "abc"] == [False, False, True]
    nothing = cli("release", "--search", "no-such-text")
    assert (nothing.returncode, nothing.stderr) == (0, "no job matches: nothing to do\n")
    both = cli("hold", "a", "--search", "render")
    assert both.returncode == 2
    assert "not both" in both.stderr
    assert not queue.get("a").held


def test_cli_list_combines_search_held_and_batch(cli: Any, queue: Queue) -> None:
    for n in range(3):
        queue.enqueue(f"render {n}", id=f"r{n}", batch="film")
    queue.enqueue("render 9", id="r9")
    queue.hold("r1", "r9")
    listed = lambda *args: cli("list", "--json", *args).stdout  # noqa: E731
    ids = lambda *args: [job["id"] for job in json.loads(listed(*args))]  # noqa: E731
    assert ids("--search", "render", "--batch", "film") == ["r2", "r1", "r0"]
    assert ids("--search", "render", "--held") == ["r9", "r1"]
    assert ids("--search", "render", "--held", "--batch", "film") == ["r1"]
    assert ids("--held", "--batch", "film") == ["r1"]
    assert ids("--batch", "film", "--state", "pending") == ["r2", "r1", "r0"]
    bad = cli("list", "--batch", "not a name!")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1
