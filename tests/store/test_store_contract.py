"""The store contract, through the Store methods, on every backend."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest

from queuectl import Queue
from queuectl import queue as queue_module
from queuectl.errors import (
    ConflictError,
    DuplicateJobError,
    InvalidInputError,
    NotFoundError,
    WrongStateError,
)
from queuectl.lifecycle import Fence, Outcome
from queuectl.models import Job, new_job
from queuectl.store import Runner, Schedule, Store, open_store
from queuectl.store.records import EVERY_JOB, JobFilter
from tests.support import fake_runner
from tests.support.claims import token_of
from tests.support.clock import FakeClock
from tests.support.fake_runner import claim, runner_row

LEASE_S = 30.0
#: Report an attempt's end as a runner does, with the retry rules its claim returned; how
#: it was settled (None when fenced out).
finish = partial(fake_runner.settle, rules=True)


def output(store: Store, job_id: str) -> bytes | None:
    """The kept output of the job's last attempt (None: it has no attempt)."""
    found = store.output(job_id)
    return None if found is None else found.data


def add(store: Store, *jobs: dict[str, Any]) -> list[Job]:
    return store.enqueue_many([new_job({"command": "true", **job}) for job in jobs])


def state(store: Store, job_id: str) -> str:
    job = store.get(job_id)
    assert job is not None
    return job.state


def get(store: Store, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None
    return job


# -- enqueue


def test_enqueue_returns_the_stored_jobs(store: Store, clock: FakeClock) -> None:
    [job] = add(
        store,
        {
            "id": "a",
            "priority": 3,
            "max_retries": 1,
            "env": {"A": "1"},
            "timeout": "5s",
            "queue": "q",
            "no_retry_exit_codes": [9],
        },
    )
    assert (job.id, job.state, job.priority, job.max_retries, job.attempts) == (
        "a",
        "pending",
        3,
        1,
        0,
    )
    assert (job.env, job.timeout, job.queue, job.no_retry_exit_codes) == ({"A": "1"}, 5.0, "q", [9])
    assert job.run_at_ms == job.created_at_ms == job.updated_at_ms == clock.now_ms()
    assert job.cwd == os.getcwd()
    assert store.get("a") == job


def test_enqueue_generates_ids_and_uses_the_configured_retries(store: Store) -> None:
    store.set_config("max_retries", 7)
    first, second = add(store, {}, {})
    assert first.id != second.id
    assert first.max_retries == second.max_retries == 7


def test_enqueue_many_keeps_the_order(store: Store) -> None:
    jobs = add(store, *({"id": f"j{n}"} for n in range(50)))
    assert [j.id for j in jobs] == [f"j{n}" for n in range(50)]


def test_a_bulk_batch_stores_each_job_as_returned(store: Store) -> None:
    # 123 plain jobs: whole multi-row statements and a remainder on SQLite, a COPY on
    # PostgreSQL; every field a plain job may carry, varied from job to job.
    fields = [
        {
            "queue": f"q{n % 3}",
            "priority": n % 7 - 3,
            "max_retries": n % 4,
            "timeout": f"{n + 1}s" if n % 2 else None,
            "delay": "1h" if n % 5 == 0 else None,
            "no_retry_exit_codes": [n % 256, 3] if n % 3 == 0 else [],
            "cwd": f"/tmp/{n}",
            "env": {"N": str(n), "QUOTE": 'a\tb "c" \\ é'} if n % 4 == 0 else {},
            "lock": f"lock-{n}" if n % 6 == 0 else None,
            "command": f"echo {n} 'x\ty' \\N",
        }
        for n in range(123)
    ]
    jobs = add(store, *fields, {"id": "given"})
    assert len({job.id for job in jobs}) == 124
    assert jobs[-1].id == "given"
    for job in jobs:
        assert store.get(job.id) == job
    assert [job.id for job in store.list_jobs().jobs] == [job.id for job in reversed(jobs)]


def test_a_bulk_batch_of_like_jobs_stores_each_in_order(store: Store) -> None:
    # Runs of jobs alike but for id and command, whose other columns SQLite binds once a
    # statement: whole statements and a remainder, a run too short for that between two long
    # ones, and given ids out of sorted order (the stored order is the batch's, not the ids').
    fields: list[dict[str, Any]] = [{"command": f"echo {n}"} for n in range(1100)]
    fields += [{"queue": "short"} for _ in range(5)]
    fields += [{"id": f"given-{n * 7919 % 1000:03}"} for n in range(1000)]
    jobs = add(store, *fields)
    assert [job.command for job in jobs[:1100]] == [f"echo {n}" for n in range(1100)]
    assert [job.id for job in jobs[1105:]] == [f"given-{n * 7919 % 1000:03}" for n in range(1000)]
    assert store.list_jobs().jobs == list(reversed(jobs))
    assert store.counts() == {"default": {"pending": 2100}, "short": {"pending": 5}}
    with pytest.raises(DuplicateJobError, match="'given-007'"):
        add(store, *({"id": f"new-{n}"} for n in range(50)), {"id": "given-007"})
    assert store.get("new-0") is None
    assert store.counts() == {"default": {"pending": 2100}, "short": {"pending": 5}}


def test_enqueue_empty_batch(store: Store) -> None:
    assert store.enqueue_many([]) == []


def test_delay_and_run_at(store: Store, clock: FakeClock) -> None:
    delayed, later = add(store, {"delay": "10s"}, {"run_at": "2030-01-01T00:00:00Z"})
    assert delayed.run_at_ms == clock.now_ms() + 10_000
    assert later.run_at_ms == 1_893_456_000_000


def test_duplicate_id_is_refused_and_the_batch_changes_nothing(store: Store) -> None:
    add(store, {"id": "a"})
    with pytest.raises(DuplicateJobError, match="'a'"):
        add(store, {"id": "b"}, {"id": "a"})
    assert store.get("b") is None
    with pytest.raises(DuplicateJobError, match="twice"):
        add(store, {"id": "c"}, {"id": "c"})
    assert store.get("c") is None


def test_duplicate_id_error_names_the_existing_job(store: Store) -> None:
    add(store, {"id": "z"})
    with pytest.raises(DuplicateJobError, match="'z' already exists"):
        add(store, {"id": "a-new"}, {"id": "b-new"}, {"id": "z"}, {"id": "c-new"})
    assert [j.id for j in store.list_jobs().jobs] == ["z"]


def test_duplicate_id_in_a_batch_with_dependencies(store: Store) -> None:
    add(store, {"id": "a"})
    with pytest.raises(DuplicateJobError):
        add(store, {"id": "b", "depends_on": ["a"]}, {"id": "a", "unique_key": "k"})
    assert store.get("b") is None


def test_unique_key_returns_the_job_that_holds_it(store: Store, clock: FakeClock) -> None:
    [held] = add(store, {"id": "a", "unique_key": "k"})
    [again] = add(store, {"id": "b", "unique_key": "k", "command": "other"})
    assert again.id == "a"
    assert again.command == "true"
    assert store.get("b") is None
    # Still held while processing and failed...
    assert claim(store) == ["a"]
    assert add(store, {"unique_key": "k"})[0].id == "a"
    finish(store, "a", attempt=1, exit_code=1)
    assert state(store, "a") == "failed"
    assert add(store, {"unique_key": "k"})[0].id == "a"
    # ...and free once the job is finished.
    clock.advance(60)
    assert claim(store) == ["a"]
    finish(store, "a", attempt=2, exit_code=0)
    [fresh] = add(store, {"id": "c", "unique_key": "k"})
    assert fresh.id == "c"
    assert held.id == "a"


def test_unique_key_within_one_batch(store: Store) -> None:
    jobs = add(store, {"id": "a", "unique_key": "k"}, {"id": "b", "unique_key": "k"})
    assert [j.id for j in jobs] == ["a", "a"]
    assert store.get("b") is None


def test_depends_on_waits_for_completion(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"}, {"id": "b"})
    [c] = add(store, {"id": "c", "depends_on": ["a", "b"], "priority": 9})
    assert c.depends_on == ["a", "b"]
    assert claim(store, 10) == ["a", "b"]
    finish(store, "a", attempt=1)
    assert claim(store, 10) == []
    finish(store, "b", attempt=1)
    assert claim(store, 10) == ["c"]


def test_depends_on_a_completed_job_is_due_at_once(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim(store)
    finish(store, "a", attempt=1)
    add(store, {"id": "b", "depends_on": ["a"]})
    assert claim(store) == ["b"]


def test_depends_on_within_one_batch(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]})
    assert claim(store, 10) == ["a"]
    finish(store, "a", attempt=1)
    assert claim(store, 10) == ["b"]


def test_depends_on_an_unknown_job_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError, match="nope"):
        add(store, {"id": "a"}, {"id": "b", "depends_on": ["nope"]})
    assert store.get("a") is None


def test_a_dead_dependency_cancels_the_dependants(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 0})
    add(store, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["b"]})
    claim(store)
    finish(store, "a", attempt=1, exit_code=1)
    assert state(store, "a") == "dead"
    for job_id in ("b", "c"):
        job = get(store, job_id)
        assert job.state == "cancelled"
        assert job.last_error is not None
    assert "a" in get(store, "b").last_error  # type: ignore[operator]
    [d] = add(store, {"id": "d", "depends_on": ["a"]})
    assert d.state == "cancelled"
    assert "a" in (d.last_error or "")


@pytest.mark.parametrize("fenced", [True, False], ids=["runner", "unfenced"])
def test_dependencies_that_complete_together_unblock_their_dependant(
    store: Store, clock: FakeClock, fenced: bool
) -> None:
    """Both results in one exchange (a runner with two slots): the dependant waits on none.
    Unfenced outcomes (a result without its claim's retry rules) take PostgreSQL's general
    path, fenced ones its one-round-trip path."""
    add(store, {"id": "a"}, {"id": "b"}, {"id": "c", "depends_on": ["a", "b"]})
    assert claim(store, 10) == ["a", "b"]
    outcomes = [
        Outcome(
            job_id,
            1,
            0,
            None,
            100,
            fence=Fence(1, token_of(store, job_id), 3, []) if fenced else None,
            token=token_of(store, job_id),
        )
        for job_id in ("a", "b")
    ]
    settled = store.finish_and_claim("r1", outcomes, 0, None, LEASE_S).settled
    assert {job_id: s.state for job_id, s in settled.items()} == {
        "a": "completed",
        "b": "completed",
    }
    assert claim(store, 10) == ["c"]


def test_a_failed_dependency_keeps_its_dependants_waiting_on_the_runners_path(
    store: Store, clock: FakeClock
) -> None:
    """A dependency that fails and will be retried has not completed: its dependant waits,
    also when the runner settles with its claim's retry rules (PostgreSQL's one round trip)."""
    add(store, {"id": "dep", "max_retries": 1}, {"id": "child", "depends_on": ["dep"]})
    assert claim(store, 10) == ["dep"]
    assert finish(store, "dep", attempt=1, exit_code=1) is not None
    assert state(store, "dep") == "failed"
    assert get(store, "child").state == "pending"
    assert claim(store, 10) == []
    clock.advance(3600)
    assert claim(store, 10) == ["dep"]
    finish(store, "dep", attempt=2)
    assert claim(store, 10) == ["child"]


def test_a_job_enqueued_after_a_cancelled_dependency_is_cancelled(store: Store) -> None:
    """It could never start: stored cancelled, naming why, as after a dead dependency."""
    add(store, {"id": "a"})
    store.cancel(["a"])
    [b] = add(store, {"id": "b", "depends_on": ["a"]})
    assert b.state == "cancelled"
    assert b.last_error == "dependency a is cancelled"
    assert (get(store, "b").state, claim(store, 10)) == ("cancelled", [])
    assert store.counts() == {"default": {"cancelled": 2}}


# -- claim


def test_claim_order_priority_then_run_at_then_creation(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "old-low"}, {"id": "high", "priority": 5})
    clock.advance(1)
    add(store, {"id": "new-low"}, {"id": "early", "run_at": "2020-01-01T00:00:00Z"})
    add(store, {"id": "new-high", "priority": 5}, {"id": "neg", "priority": -1})
    assert claim(store, 10) == ["high", "new-high", "early", "old-low", "new-low", "neg"]


def test_claim_one_at_a_time_follows_the_same_order(store: Store) -> None:
    add(store, {"id": "a"}, {"id": "b", "priority": 1}, {"id": "c"})
    assert [claim(store)[0] for _ in range(3)] == ["b", "a", "c"]
    assert claim(store) == []


def test_a_runner_of_some_queues_claims_in_the_same_order_and_only_theirs(
    store: Store, clock: FakeClock
) -> None:
    # One queue is claimed from that queue's own index, several from the common one: the
    # order and the queues kept are the same either way.
    add(store, {"id": "b-high", "queue": "b", "priority": 9}, {"id": "a-old", "queue": "a"})
    clock.advance(1)
    add(store, {"id": "a-high", "queue": "a", "priority": 5}, {"id": "c-new", "queue": "c"})
    add(store, {"id": "a-early", "queue": "a", "run_at": "2020-01-01T00:00:00Z"})
    assert [claim(store, 1, ["a"])[0] for _ in range(3)] == ["a-high", "a-early", "a-old"]
    assert claim(store, 1, ["a"]) == []
    assert claim(store, 10, ["c", "b"]) == ["b-high", "c-new"]


def test_claim_several_at_once(store: Store, clock: FakeClock) -> None:
    add(store, *({"id": f"j{n:02}"} for n in range(10)))
    claims = store.finish_and_claim("r1", [], 4, None, LEASE_S).claims
    assert [c.id for c in claims] == ["j00", "j01", "j02", "j03"]
    assert all(c.attempt == 1 for c in claims)
    job = get(store, "j00")
    assert (job.state, job.attempts, job.lease_owner) == ("processing", 1, "r1")
    assert job.started_at_ms == clock.now_ms()
    assert job.lease_expires_at_ms == clock.now_ms() + 30_000
    assert claim(store, 100, owner="r2") == [f"j{n:02}" for n in range(4, 10)]
    assert claim(store, 100) == []


def test_claim_returns_what_the_runner_needs(store: Store) -> None:
    add(
        store,
        {
            "id": "a",
            "command": "echo hi",
            "cwd": "/tmp",
            "env": {"X": "1"},
            "timeout": 7,
            "queue": "q",
            "priority": 2,
        },
    )
    [c] = store.finish_and_claim("r1", [], 1, None, LEASE_S).claims
    assert (c.id, c.attempt, c.command, c.cwd, c.env, c.timeout, c.queue, c.priority) == (
        "a",
        1,
        "echo hi",
        "/tmp",
        {"X": "1"},
        7.0,
        "q",
        2,
    )


def test_claim_skips_jobs_not_yet_due(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "later", "delay": "10s"})
    exchange = store.finish_and_claim("r1", [], 1, None, LEASE_S)
    assert exchange.claims == []
    assert exchange.next_due_ms == clock.now_ms() + 10_000
    clock.advance(10)
    exchange = store.finish_and_claim("r1", [], 2, None, LEASE_S)
    assert [c.id for c in exchange.claims] == ["later"]
    assert exchange.next_due_ms is None


def test_a_job_due_for_its_enqueuer_is_due_for_a_runner_whose_clock_lags(
    store: Store, target: str, clock: FakeClock
) -> None:
    # Each process carries the database's clock forward on its own: a runner's may lag the
    # enqueuer's by a few ms. A job due when enqueued must not wait for the fallback poll.
    ahead = open_store(target, FakeClock(clock.now_ms() + 50))
    try:
        ahead.enqueue_many([new_job({"id": "now", "command": "true"})])
        ahead.enqueue_many([new_job({"id": "soon", "command": "true", "delay": "1s"})])
        exchange = store.finish_and_claim("r1", [], 2, None, LEASE_S)
        assert [c.id for c in exchange.claims] == ["now"]
        assert exchange.next_due_ms == clock.now_ms() + 1050
        # the same through flow control (a limited queue, a lock)
        store.set_limits("limited", 5, None)
        ahead.enqueue_many(
            [
                new_job({"id": "limited", "command": "true", "queue": "limited"}),
                new_job({"id": "locked", "command": "true", "lock": "k"}),
            ]
        )
        claimed = store.finish_and_claim("r1", [], 2, ["limited", "default"], LEASE_S).claims
        assert sorted(c.id for c in claimed) == ["limited", "locked"]
    finally:
        ahead.close()


def test_claim_by_queue(store: Store) -> None:
    add(store, {"id": "a", "queue": "a"}, {"id": "b", "queue": "b"}, {"id": "c"})
    assert claim(store, 10, queues=["b", "x"]) == ["b"]
    assert claim(store, 10, queues=[]) == []
    assert claim(store, 10) == ["a", "c"]


def test_paused_queue_is_not_claimed(store: Store) -> None:
    store.set_paused("slow", True)
    assert store.queues() == {"slow": True}
    add(store, {"id": "a", "queue": "slow"}, {"id": "b"})
    assert claim(store, 10) == ["b"]
    assert claim(store, 10, queues=["slow"]) == []
    store.set_paused("slow", False)
    assert store.queues() == {"slow": False}
    assert claim(store, 10) == ["a"]


# -- settle (finish), fencing


def test_success_completes(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim(store)
    clock.advance(2)
    finish(store, "a", attempt=1, output=b"hello\n")
    job = get(store, "a")
    assert (job.state, job.exit_code, job.last_error, job.attempts) == ("completed", 0, None, 1)
    assert job.finished_at_ms == clock.now_ms()
    assert job.duration_ms == 100
    assert job.lease_owner is None
    assert output(store, "a") == b"hello\n"
    assert store.done_since(clock.now_ms() - 60_000) == 1
    assert store.done_since(clock.now_ms() + 1) == 0


def test_failure_backs_off_then_dies(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 2})
    for attempt, wait_s in ((1, 2), (2, 4)):
        assert claim(store) == ["a"]
        finish(store, "a", attempt=attempt, exit_code=3)
        job = get(store, "a")
        assert (job.state, job.attempts, job.exit_code, job.last_error) == (
            "failed",
            attempt,
            3,
            "exit code 3",
        )
        assert job.run_at_ms == clock.now_ms() + wait_s * 1000
        clock.advance(wait_s - 0.001)
        assert claim(store) == []
        clock.advance(0.001)
    assert claim(store) == ["a"]
    finish(store, "a", attempt=3, exit_code=3)
    job = get(store, "a")
    assert (job.state, job.attempts, job.last_error) == ("dead", 3, "exit code 3")
    assert claim(store) == []


def test_no_retry_exit_code_goes_dead_at_once(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 5, "no_retry_exit_codes": [64]})
    claim(store)
    finish(store, "a", attempt=1, exit_code=64)
    assert state(store, "a") == "dead"


def test_settle_uses_the_stored_backoff_config(store: Store, clock: FakeClock) -> None:
    store.set_config("backoff_base", 3)
    add(store, {"id": "a"})
    claim(store)
    clock.advance(1)
    clock.advance(1)
    claim(store)
    finish(store, "a", attempt=1, exit_code=1)
    assert get(store, "a").run_at_ms == clock.now_ms() + 3000


@pytest.mark.parametrize(("owner", "token"), [("r2", 1), ("r1", 2), ("r1", 0)])
def test_a_late_writer_changes_nothing(
    store: Store, clock: FakeClock, owner: str, token: int
) -> None:
    add(store, {"id": "a"})
    claim(store)
    before = get(store, "a")
    late = finish(store, "a", attempt=1, exit_code=0, owner=owner, output=b"x", token=token)
    assert late is None
    assert get(store, "a") == before
    assert output(store, "a") == b""  # the attempt runs on, with nothing saved yet
    assert store.release(owner, "a", token) is False
    assert get(store, "a") == before


def test_a_writer_whose_lease_was_reclaimed_is_fenced_out(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim(store, owner="r1")
    clock.advance(LEASE_S + 1)
    assert store.reap([]) == ["a"]
    clock.advance(10)
    assert claim(store, owner="r2") == ["a"]
    finish(store, "a", attempt=1, exit_code=0, owner="r1")
    job = get(store, "a")
    assert (job.state, job.lease_owner, job.attempts) == ("processing", "r2", 2)
    finish(store, "a", attempt=2, exit_code=0, owner="r2")
    assert state(store, "a") == "completed"


def test_finishing_a_cancelled_job_changes_nothing(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim(store)
    store.cancel(["a"])
    finish(store, "a", attempt=1, exit_code=0)
    job = get(store, "a")
    assert (job.state, job.last_error) == ("cancelled", "cancelled")


def test_finish_and_claim_in_one_call(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"}, {"id": "b"})
    claim(store)
    exchange = store.finish_and_claim(
        "r1", [Outcome("a", 1, 0, None, 0, token=1)], 1, None, LEASE_S
    )
    settled, claims = exchange.settled, exchange.claims
    assert [c.id for c in claims] == ["b"]
    assert settled["a"].state == "completed"
    assert state(store, "a") == "completed"


# -- release


def test_release_gives_the_attempt_back(store: Store) -> None:
    add(store, {"id": "a"})
    claim(store)
    assert store.release("r1", "a", 1) is True
    job = get(store, "a")
    assert (job.state, job.attempts, job.lease_owner) == ("pending", 0, None)
    assert store.release("r1", "a", 1) is False
    [c] = store.finish_and_claim("r2", [], 1, None, LEASE_S).claims
    assert (c.id, c.attempt) == ("a", 1)


# -- leases and reaping


def test_expired_leases_are_reaped_as_worker_lost(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"}, {"id": "b"})
    claim(store, 2)
    store.heartbeat("r1", LEASE_S)
    clock.advance(LEASE_S)
    assert store.reap([]) == []  # the lease ends at, not before, lease_seconds
    clock.advance(0.001)
    assert sorted(store.reap([])) == ["a", "b"]
    job = get(store, "a")
    assert (job.state, job.last_error, job.attempts, job.lease_owner) == (
        "failed",
        "worker lost",
        1,
        None,
    )
    assert job.run_at_ms == clock.now_ms() + 2000
    assert store.reap([]) == []


def test_a_runner_never_reaps_its_own_expired_leases(store: Store, clock: FakeClock) -> None:
    """Its jobs still run (its clock stepped, say): it renews their leases at its next beat."""
    add(store, {"id": "a"})
    claim(store, owner="r1")
    clock.advance(LEASE_S + 1)
    assert store.reap([], exclude=["r1"]) == []
    assert (state(store, "a"), get(store, "a").lease_owner) == ("processing", "r1")
    assert store.reap([], exclude=["r2"]) == ["a"]


def test_heartbeat_renews_the_leases(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim(store)
    for _ in range(5):
        clock.advance(LEASE_S - 1)
        store.heartbeat("r1", LEASE_S)
        assert store.reap([]) == []
    assert get(store, "a").lease_expires_at_ms == clock.now_ms() + 30_000
    assert store.owned_jobs("r1") == {"a": 1}


def test_worker_lost_on_the_last_attempt_is_dead(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 0})
    claim(store)
    clock.advance(LEASE_S + 1)
    store.reap([])
    job = get(store, "a")
    assert (job.state, job.last_error, job.attempts) == ("dead", "worker lost", 1)


def test_reap_of_a_dead_runner_does_not_wait_for_the_lease(store: Store, clock: FakeClock) -> None:
    store.register_runner(runner("r1"))
    store.register_runner(runner("r2"))
    add(store, {"id": "a"}, {"id": "b"})
    claim(store, owner="r1")
    claim(store, owner="r2")
    assert store.reap(["r1"]) == ["a"]
    assert (state(store, "a"), state(store, "b")) == ("failed", "processing")
    assert [r.id for r in store.runners()] == ["r2"]


def test_housekeeping_reads_what_a_runner_checks(store: Store, clock: FakeClock) -> None:
    store.register_runner(runner("r1", ["a"]))
    store.register_runner(runner("r2"))
    store.set_config("lease_seconds", 45)
    add(store, {"id": "x", "queue": "a"}, {"id": "y", "queue": "b"}, {"id": "z", "delay": "10s"})
    seen = store.housekeeping("r1", ["a"])
    assert (seen.owned, seen.expired, seen.next_schedule_ms, seen.startable) == (
        {},
        False,
        None,
        True,
    )
    assert (seen.config["lease_seconds"], seen.config["max_retries"]) == (45, 3)
    first = {r.id: r for r in seen.runners}["r1"]
    assert (first.host, first.pid, first.pid_started, first.queues) == (
        "h",
        os.getpid(),
        "x",
        ["a"],
    )
    assert (first.workers, first.stop_requested) == (2, False)
    assert sorted(r.id for r in seen.runners) == ["r1", "r2"]

    assert claim(store, owner="r1", queues=["a"]) == ["x"]
    seen = store.housekeeping("r1", ["a"])
    assert (seen.owned, seen.startable) == ({"x": 1}, False)  # y is of another queue
    assert store.housekeeping("r2", None).startable
    store.set_paused("b", True)
    assert not store.housekeeping("r2", ["b"]).startable
    clock.advance(10)
    assert store.housekeeping("r2", None).startable  # z is due, though not yet claimable
    assert claim(store, owner="r2") == ["z"]

    clock.advance(LEASE_S + 1)
    store.heartbeat("r2", LEASE_S)  # renews z's lease; x's (r1's own) has expired
    assert not store.housekeeping("r1", ["a"]).expired
    assert store.housekeeping("r2", None).expired
    store.request_stop()
    assert all(r.stop_requested for r in store.housekeeping("r1", ["a"]).runners)
    now = clock.now_ms()
    store.add_schedule(Schedule("s", None, 60, None, {"command": "true"}, now, None, now + 5))
    assert store.housekeeping("r1", None).next_schedule_ms == now + 5


def test_an_empty_claim_skips_flow_control_only_when_none_applies(store: Store) -> None:
    """Nothing to take: the answer is the same whether flow control applies or not; and it
    applies again as soon as a queue has a limit or a job waiting to start holds a lock."""
    assert claim(store, 2) == []
    store.set_limits("limited", 1, None)
    add(store, {"id": "a", "queue": "limited"}, {"id": "b", "queue": "limited"})
    assert claim(store, 2) == ["a"]
    assert claim(store, 2) == []
    store.set_limits("limited", None, None)
    add(store, {"id": "c", "lock": "k"}, {"id": "d", "lock": "k"})
    assert claim(store, 3) == ["b", "c"]
    assert claim(store, 3) == []


# -- cancel, requeue, purge


def test_cancel(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "p"}, {"id": "run"}, {"id": "f"}, {"id": "done"})
    assert claim(store, 3) == ["p", "run", "f"]
    finish(store, "f", attempt=1, exit_code=1)
    store.release("r1", "p", 1)
    claim(store, owner="r2")  # "p" again
    finish(store, "p", attempt=1, exit_code=0, owner="r2")
    assert claim(store) == ["done"]
    finish(store, "done", attempt=1)
    add(store, {"id": "pending"})
    before = store.cancel(["pending", "run", "f"])
    assert [(j.id, j.state) for j in before] == [
        ("pending", "pending"),
        ("run", "processing"),
        ("f", "failed"),
    ]
    # the running one keeps its runner's lease until its processes are gone
    for job_id, owner in (("pending", None), ("run", "r1"), ("f", None)):
        job = get(store, job_id)
        assert (job.state, job.last_error, job.lease_owner) == ("cancelled", "cancelled", owner)
        assert job.finished_at_ms == clock.now_ms()


def test_cancel_is_all_or_nothing(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"}, {"id": "b"})
    claim(store)
    finish(store, "a", attempt=1)
    with pytest.raises(WrongStateError, match="'a' is completed"):
        store.cancel(["b", "a"])
    assert state(store, "b") == "pending"
    with pytest.raises(NotFoundError, match="nope"):
        store.cancel(["b", "nope"])
    assert state(store, "b") == "pending"


def test_cancel_cancels_the_dependants(store: Store) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]})
    store.cancel(["a"])
    job = get(store, "b")
    assert job.state == "cancelled"
    assert "a" in (job.last_error or "")


def kill(store: Store, clock: FakeClock, job_id: str) -> None:
    """Make a job, alone in its queue, dead through its attempts."""
    job = get(store, job_id)
    for attempt in range(job.attempts + 1, job.max_retries + 2):
        clock.advance(3600)
        assert claim(store, owner="killer", queues=[job.queue]) == [job_id]
        finish(store, job_id, attempt=attempt, exit_code=1, owner="killer")
    assert state(store, job_id) == "dead"


def test_retry_dead_resets_attempts(store: Store, clock: FakeClock) -> None:
    add(
        store,
        {"id": "a", "max_retries": 1, "queue": "qa"},
        {"id": "b", "max_retries": 0, "queue": "qb"},
    )
    kill(store, clock, "a")
    kill(store, clock, "b")
    clock.advance(5)
    assert store.requeue(["a"], ["dead"]) == ["a"]
    job = get(store, "a")
    assert (job.state, job.attempts, job.finished_at_ms) == ("pending", 0, None)
    assert job.run_at_ms == clock.now_ms()
    assert store.requeue(None, ["dead"]) == ["b"]
    assert store.requeue(None, ["dead"]) == []
    assert claim(store, 10) == ["a", "b"]
    assert get(store, "a").attempts == 1


def test_retry_dead_is_all_or_nothing(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 0, "queue": "qa"}, {"id": "b"})
    kill(store, clock, "a")
    with pytest.raises(WrongStateError, match="'b' is pending"):
        store.requeue(["a", "b"], ["dead"])
    with pytest.raises(NotFoundError, match="nope"):
        store.requeue(["a", "nope"], ["dead"])
    assert state(store, "a") == "dead"


def test_retry_dead_refuses_when_its_unique_key_is_held(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 0, "queue": "qa", "unique_key": "k"})
    kill(store, clock, "a")
    add(store, {"id": "b", "unique_key": "k"})
    with pytest.raises(ConflictError, match=r"'a'.*unique_key"):
        store.requeue(["a"], ["dead"])
    assert store.requeue(None, ["dead"]) == []  # a bulk retry leaves it dead and goes on
    assert (state(store, "a"), state(store, "b")) == ("dead", "pending")


def test_retry_all_runs_only_the_dead_jobs_again(
    store: Store, clock: FakeClock, target: str
) -> None:
    """`dlq retry --all` (and with a queue): dead jobs only; cancelled and completed ones stay."""
    add(
        store,
        {"id": "dead", "max_retries": 0, "queue": "qa"},
        {"id": "dead-b", "max_retries": 0, "queue": "qb"},
        {"id": "cancelled", "queue": "qa"},
        {"id": "done", "queue": "qc"},
    )
    kill(store, clock, "dead")
    kill(store, clock, "dead-b")
    store.cancel(["cancelled"])
    assert claim(store, queues=["qc"]) == ["done"]
    finish(store, "done", attempt=1)
    with Queue(target) as queue:
        assert queue.retry(queue="qa") == ["dead"]
        assert queue.retry(all=True) == ["dead-b"]
        assert queue.retry(all=True) == []
    states = {job_id: state(store, job_id) for job_id in ("dead", "dead-b", "cancelled", "done")}
    assert states == {
        "dead": "pending",
        "dead-b": "pending",
        "cancelled": "cancelled",
        "done": "completed",
    }


def test_purge_by_state_and_age(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "old"}, {"id": "new"}, {"id": "dead", "max_retries": 0, "queue": "qd"})
    add(store, {"id": "p", "delay": "100d"})
    claim(store)
    finish(store, "old", attempt=1, output=b"out")
    clock.advance(3600)
    claim(store)
    finish(store, "new", attempt=1)
    kill(store, clock, "dead")
    cutoff = get(store, "new").finished_at_ms
    assert cutoff is not None
    assert store.purge(["completed"], cutoff) == 1
    assert store.get("old") is None
    assert output(store, "old") is None
    assert store.get("new") is not None
    assert store.purge(["completed", "dead"], clock.now_ms() + 1) == 2
    assert [j.id for j in store.list_jobs().jobs] == ["p"]


# -- reads


def test_list_jobs_newest_first_with_filters_and_pages(store: Store) -> None:
    add(store, {"id": "a"}, {"id": "b", "queue": "q"}, {"id": "c"}, {"id": "d", "queue": "q"})
    claim(store)
    ids = lambda page: [job.id for job in page.jobs]  # noqa: E731
    assert ids(store.list_jobs()) == ["d", "c", "b", "a"]
    assert ids(store.list_jobs(JobFilter(states=["pending"]))) == ["d", "c", "b"]
    assert ids(store.list_jobs(JobFilter(queues=["q"]))) == ["d", "b"]
    assert ids(store.list_jobs(JobFilter(states=["pending"], queues=["q"]), 1)) == ["d"]
    assert ids(
        store.list_jobs(JobFilter(states=["pending", "processing"], queues=["q", "default"]))
    ) == [
        "d",
        "c",
        "b",
        "a",
    ]
    assert ids(store.list_jobs(JobFilter(states=["processing"], queues=["q", "default"]))) == ["a"]
    first = store.list_jobs(EVERY_JOB, 2)
    assert ids(first) == ["d", "c"]
    assert ids(store.list_jobs(EVERY_JOB, 2, first.next_before)) == ["b", "a"]


def test_list_jobs_union_is_one_newest_first_order_across_pages(store: Store) -> None:
    # a and b are claimed (processing); the union's walks (one per state and queue) interleave
    add(store, *({"id": i, "queue": q} for i, q in zip("abcdefgh", "xyxyzxyx", strict=True)))
    assert claim(store, 2) == ["a", "b"]
    ids = lambda page: [job.id for job in page.jobs]  # noqa: E731
    states, queues = ["pending", "processing", "pending"], ["x", "y"]
    assert ids(store.list_jobs(JobFilter(states=states, queues=queues))) == list("hgfdcba")
    pages, before = [], None
    while True:
        page = store.list_jobs(JobFilter(states=states, queues=queues), 3, before)
        pages.append(ids(page))
        if page.next_before is None:
            break
        before = page.next_before
    assert pages == [list("hgf"), list("dcb"), list("a")]
    assert ids(store.list_jobs(JobFilter(states=["processing", "dead"]), 1)) == ["b"]


def test_counts(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"}, {"id": "b"}, {"id": "c", "queue": "q"})
    claim(store)
    assert store.counts() == {"default": {"processing": 1, "pending": 1}, "q": {"pending": 1}}


def test_get_and_output_of_unknown_jobs(store: Store) -> None:
    assert store.get("nope") is None
    assert output(store, "nope") is None


def test_save_output_replaces_and_is_fenced(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    assert store.save_output("r1", "a", 1, b"early") is False  # not running yet
    assert output(store, "a") is None
    claim(store)
    assert store.save_output("r1", "a", 1, b"one") is True
    assert store.save_output("r1", "a", 1, b"two\x00\xff") is True
    assert output(store, "a") == b"two\x00\xff"
    assert store.save_output("r2", "a", 1, b"not ours") is False
    assert store.save_output("r1", "a", 2, b"other attempt") is False
    assert output(store, "a") == b"two\x00\xff"


# -- config


def test_config_defaults_set_and_shared(store: Store, target: str, clock: FakeClock) -> None:
    assert store.config()["max_retries"] == 3
    store.set_config("max_retries", 5)
    store.set_config("backoff_jitter", 0.25)
    other = open_store(target, clock)
    try:
        assert other.config()["max_retries"] == 5
        assert other.config()["backoff_jitter"] == 0.25
        assert other.config()["lease_seconds"] == 30
    finally:
        other.close()


# -- runners


def runner(runner_id: str, queues: list[str] | None = None) -> Runner:
    return runner_row(
        runner_id,
        pid=os.getpid(),
        workers=2,
        queues=queues,
        at_ms=1_800_000_000_000,
        pid_started="x",
    )


def test_runners_register_heartbeat_unregister(store: Store, clock: FakeClock) -> None:
    store.register_runner(runner("r1", ["a", "b"]))
    add(store, {"id": "j"})
    claim(store, owner="r1")
    [seen] = store.runners()
    assert (seen.id, seen.host, seen.pid, seen.workers, seen.queues, seen.pid_started) == (
        "r1",
        "h",
        os.getpid(),
        2,
        ["a", "b"],
        "x",
    )
    assert seen.running == ["j"]
    assert seen.stop_requested is False
    clock.advance(5)
    assert store.heartbeat("r1", LEASE_S) is False
    assert store.runners()[0].heartbeat_at_ms == clock.now_ms()
    assert store.request_stop() == 1
    assert store.heartbeat("r1", LEASE_S) is True
    store.unregister_runner("r1")
    assert store.runners() == []
    assert store.heartbeat("r1", LEASE_S) is None


def test_migrate_is_idempotent(store: Store, target: str, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    version = store.migrate()
    again = open_store(target, clock)
    try:
        assert again.migrate() == version
        assert again.describe()["schema_version"] == version
        assert again.get("a") is not None
    finally:
        again.close()


# -- the Python API over the store


def test_queue_batch_errors_name_the_job_from_one(queue: Queue) -> None:
    with pytest.raises(InvalidInputError, match=r"^job 1: command"):
        queue.enqueue_many([{"command": ""}, {"command": "x"}])
    with pytest.raises(InvalidInputError, match=r"^job 3: priority"):
        queue.enqueue_many([{"command": "a"}, {"command": "b"}, {"command": "c", "priority": "x"}])
    with pytest.raises(InvalidInputError, match=r"^command"):
        queue.enqueue("")
    assert queue.list() == []


def test_a_bulk_enqueue_leaves_the_garbage_collector_as_it_found_it(queue: Queue) -> None:
    # Paused during a bulk enqueue (it frees nothing there), running again after, even when
    # the batch is refused; one the caller paused stays paused.
    many = [{"command": "true"}] * 1000
    assert gc.isenabled()
    queue.enqueue_many(many)
    with pytest.raises(InvalidInputError, match=r"^job 1001: command"):
        queue.enqueue_many([*many, {"command": ""}])
    assert gc.isenabled()
    during: list[bool] = []
    queue.enqueue_stream(
        [("line 1", {"command": "true"})], lambda jobs: during.append(gc.isenabled())
    )
    assert during == [False]
    assert gc.isenabled()
    gc.disable()
    try:
        queue.enqueue_many(many)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert len(queue.list()) == 2001


def test_a_stream_collects_its_callers_cycles_as_it_goes(
    queue: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "STREAM_BATCH", 10)
    monkeypatch.setattr(queue_module, "STREAM_COLLECT_EVERY", 20)

    class Node:
        me: Node

    made: list[weakref.ref[Node]] = []

    def items() -> Iterator[tuple[str, dict[str, Any]]]:
        for n in range(200):
            node = Node()
            node.me = node  # garbage only the collector frees
            made.append(weakref.ref(node))
            yield f"line {n}", {"command": "true"}

    alive: list[int] = []
    queue.enqueue_stream(items(), lambda jobs: alive.append(sum(r() is not None for r in made)))
    assert len(alive) == 20
    assert max(alive) <= 30, alive  # at most the cycles of the jobs since the last collection
