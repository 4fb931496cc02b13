"""Attempt history, requeue and retention pushed where a hostile user would push them (SPEC 9.3
to 9.5): requeue of jobs with dependencies, retention at its boundary instant, the output of a
cancelled attempt, a cut inside a UTF-8 character, attempt numbers no store can count; on the
fake clock, on every backend."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError, NotFoundError, WrongStateError
from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.store import Output, Store
from tests.support import fake_runner
from tests.support.clock import FakeClock
from tests.support.fake_runner import claim_due

LEASE_S = 30.0
#: The attempts of this file end having printed nothing, unless a test says what.
finish = partial(fake_runner.finish, output=b"")
AGAIN = ["completed", "dead", "cancelled"]  # the states `requeue` runs again


def add(store: Store, *jobs: dict[str, Any]) -> None:
    store.enqueue_many([new_job({"command": "true", **job}) for job in jobs])


def state(store: Store, job_id: str) -> str:
    job = store.get(job_id)
    assert job is not None
    return job.state


# -- requeue of a job with dependencies


def test_a_job_cancelled_while_it_waited_runs_once_requeued_after_its_dependency_completed(
    store: Store,
) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]})
    store.cancel(["b"])  # b still counts a as not completed
    assert claim_due(store) == ["a"]
    assert finish(store, "a", 0) == "completed"  # b is cancelled: nothing to unblock
    assert store.requeue(["b"], AGAIN) == ["b"]
    assert claim_due(store) == ["b"], "the requeued job waits forever on a completed dependency"


def test_a_requeued_job_waits_for_a_dependency_requeued_with_it(store: Store) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]})
    assert claim_due(store) == ["a"]
    finish(store, "a", 0)
    assert claim_due(store) == ["b"]
    finish(store, "b", 0)
    # in either order: b runs again after a's new run, not beside it
    assert store.requeue(["b", "a"], AGAIN) == ["b", "a"]
    assert claim_due(store) == ["a"]
    finish(store, "a", 0)
    assert claim_due(store) == ["b"]


def test_a_requeue_that_would_wait_on_a_dead_dependency_is_refused_and_changes_nothing(
    store: Store,
) -> None:
    add(store, {"id": "a", "max_retries": 0}, {"id": "b", "depends_on": ["a"]}, {"id": "c"})
    assert claim_due(store, want=1) == ["a"]
    assert finish(store, "a", 1) == "dead"
    assert state(store, "b") == "cancelled"
    assert claim_due(store) == ["c"]
    finish(store, "c", 0)
    with pytest.raises(WrongStateError, match="'b' depends on 'a', which is dead"):
        store.requeue(["c", "b"], AGAIN)
    assert (state(store, "b"), state(store, "c")) == ("cancelled", "completed"), "all or nothing"
    # with the dependency run again too, the dependant waits for it
    assert store.requeue(["b", "a"], AGAIN) == ["b", "a"]
    assert claim_due(store) == ["a"]


def test_a_requeue_that_would_wait_on_a_cancelled_dependency_is_refused(store: Store) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]})
    store.cancel(["a"])  # and b with it
    assert state(store, "b") == "cancelled"
    with pytest.raises(WrongStateError, match="'b' depends on 'a', which is cancelled"):
        store.requeue(["b"], AGAIN)
    assert state(store, "b") == "cancelled"
    assert store.requeue(["a", "b"], AGAIN) == ["a", "b"]
    assert claim_due(store) == ["a"]
    finish(store, "a", 0)
    assert claim_due(store) == ["b"]


def test_a_dependency_deleted_since_holds_no_requeued_job_back(
    store: Store, clock: FakeClock
) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]})
    store.cancel(["b"])
    claim_due(store)
    finish(store, "a", 0)
    clock.advance(1)
    assert store.purge(["completed"], clock.now_ms()) == 1  # a is gone, b still names it
    assert store.requeue(["b"], AGAIN) == ["b"]
    assert claim_due(store) == ["b"]


# -- retention


def test_expire_keeps_a_job_finished_at_the_boundary_instant_and_every_unfinished_one(
    store: Store, clock: FakeClock
) -> None:
    add(
        store,
        {"id": "done"},
        {"id": "retried", "max_retries": 5},
        {"id": "dead", "max_retries": 0},
        {"id": "running"},
    )
    add(store, {"id": "later", "delay": 3600}, {"id": "gone"})
    store.cancel(["gone"])
    claim_due(store)
    finish(store, "done", 0)
    assert finish(store, "retried", 1) == "failed"  # it has a finished_at too
    finish(store, "dead", 1)
    finished = store.get("done")
    assert finished is not None
    assert finished.finished_at_ms is not None
    at = finished.finished_at_ms
    clock.advance(10)
    assert store.expire(["completed", "cancelled"], at, 100) == 0, "not older than the cutoff"
    assert store.get("done") is not None
    assert store.expire(["completed", "cancelled"], at + 1, 100) == 2  # done, gone
    assert store.get("done") is None
    # as the runners ask (see maintenance.Expiry), long after everything ran
    clock.advance(3600 * 24 * 365)
    assert store.expire(["completed", "cancelled"], clock.now_ms(), 100) == 0
    assert store.expire(["dead"], clock.now_ms(), 100) == 1
    left = {job.id for job in store.list_jobs().jobs}
    assert left == {"retried", "running", "later"}, "never a failed, running or pending job"


# -- the output of a cancelled attempt


def test_a_cancelled_attempt_keeps_what_its_runner_saw_it_print(
    store: Store, clock: FakeClock
) -> None:
    add(store, {"id": "a"})
    claim_due(store)
    store.cancel(["a"])
    assert store.save_output("r2", "a", 1, b"not ours") is False
    assert store.save_output("r1", "a", 2, b"no such attempt") is False
    assert store.save_output("r1", "a", 1, b"last words\n", 7) is True
    kept = store.output("a")
    assert kept is not None
    assert (kept.attempt, kept.data, kept.dropped) == (1, b"last words\n", 7)
    [cancelled] = store.history("a")
    assert cancelled.error == "cancelled"
    # run again (by the same runner, the same attempt number, once the first one's processes
    # are gone): the old attempt's late words stay with it, never on the attempt that runs now
    gone = Outcome("a", 1, None, None, None, abandoned=True, token=1)
    store.finish_and_claim("r1", [gone], 0, None, LEASE_S)
    store.requeue(["a"], AGAIN)
    claim_due(store)
    assert store.save_output("r1", "a", 2, b"new run") is True  # the live copy, as before
    assert store.save_output("r1", "a", 1, b"last words\n", 7) is True  # still the first's
    store.cancel(["a"])
    assert store.save_output("r1", "a", 2, b"second run\n") is True
    assert [o.data for o in (store.output("a", 1), store.output("a", 2)) if o] == [
        b"last words\n",
        b"second run\n",
    ]


def test_an_attempt_that_failed_before_a_cancel_keeps_its_own_output(store: Store) -> None:
    add(store, {"id": "a", "max_retries": 3})
    claim_due(store)
    assert finish(store, "a", 1, output=b"failed\n") == "failed"
    store.cancel(["a"])  # cancelled while it waited for its retry: no attempt ran
    assert store.save_output("r1", "a", 1, b"overwritten") is False
    kept = store.output("a")
    assert kept is not None
    assert kept.data == b"failed\n"


# -- reading an attempt's output


@pytest.mark.parametrize(
    ("data", "shown"),
    [
        ("é€".encode()[1:] + b"!", b"[queuectl: 6 earlier bytes dropped]\n\xe2\x82\xac!"),
        ("€".encode()[1:], b"[queuectl: 7 earlier bytes dropped]\n"),
        ("€".encode()[2:] + b"x", b"[queuectl: 6 earlier bytes dropped]\nx"),
        ("😀".encode()[1:] + b"x", b"[queuectl: 8 earlier bytes dropped]\nx"),
        (b"\x80\x80\x80\x80x", b"[queuectl: 5 earlier bytes dropped]\n\x80\x80\x80\x80x"),
        (b"plain", b"[queuectl: 5 earlier bytes dropped]\nplain"),
    ],
)
def test_output_cut_inside_a_utf8_character_starts_on_a_whole_one(
    data: bytes, shown: bytes
) -> None:
    assert Output(1, data, 5).shown() == shown
    assert Output(1, data, 0).shown() == data, "nothing dropped: shown as it is"


def test_attempt_numbers_no_store_can_count_are_answered_not_crashed_on(target: str) -> None:
    with Queue(target) as queue:
        queue.enqueue("true", id="a")
        for nth in (2**63 - 1, 2**63, 10**30):
            with pytest.raises(NotFoundError, match=f"job 'a' has no attempt {nth}"):
                queue.output("a", nth)
        for nth in (0, -1):
            with pytest.raises(InvalidInputError, match="attempt: must be at least 1"):
                queue.output("a", nth)
        with pytest.raises(NotFoundError, match="no job 'nope'"):
            queue.output("nope", 2**64)
