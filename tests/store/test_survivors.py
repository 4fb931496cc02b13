"""Store behaviour that planted bugs once survived (issue 18), on the fake clock, on every backend.

Each test names the bug it catches. They go through the Store methods only, so they hold for
any implementation of the store.
"""

from __future__ import annotations

from typing import Any

import pytest

from queuectl.models import Job, new_job
from queuectl.store import Store
from tests.support.clock import FakeClock
from tests.support.fake_runner import claim_due, settled

LEASE_S = 30.0


def add(store: Store, *jobs: dict[str, Any]) -> list[Job]:
    return store.enqueue_many([new_job({"command": "true", **job}) for job in jobs])


def next_due(store: Store) -> int | None:
    """When the runner would look again, as its claim reports it (nothing due now)."""
    exchange = store.finish_and_claim("r1", [], 1, None, LEASE_S)
    assert exchange.claims == []
    return exchange.next_due_ms


def output(store: Store, job_id: str) -> bytes:
    found = store.output(job_id)
    assert found is not None
    return found.data


def get(store: Store, job_id: str) -> Job:
    job = store.get(job_id)
    assert job is not None
    return job


# -- survivor 1: a failed dependency (waiting to be retried) does not unblock its dependants


def test_a_dependency_waiting_for_its_retry_keeps_its_dependants_waiting(
    store: Store, clock: FakeClock
) -> None:
    add(store, {"id": "dep", "max_retries": 1}, {"id": "child", "depends_on": ["dep"]})
    assert claim_due(store) == ["dep"]
    assert settled(store, "dep", attempt=1, exit_code=1).state == "failed"

    assert claim_due(store) == [], "the dependant started while its dependency waits for a retry"
    clock.advance(2)
    assert claim_due(store) == ["dep"], "only the retry is due, not the dependant"
    assert settled(store, "dep", attempt=2, exit_code=0).state == "completed"
    assert claim_due(store) == ["child"]


# -- survivor 2: a dependant enqueued after a running or failed dependency is not due


def test_a_job_enqueued_after_a_running_or_failed_dependency_waits_for_its_completion(
    store: Store, clock: FakeClock
) -> None:
    add(store, {"id": "dep", "max_retries": 1})
    assert claim_due(store) == ["dep"]
    add(store, {"id": "after-processing", "depends_on": ["dep"]})
    assert get(store, "dep").state == "processing"
    assert claim_due(store) == [], "a dependant of a processing job was claimable at once"

    settled(store, "dep", attempt=1, exit_code=1)
    add(store, {"id": "after-failed", "depends_on": ["dep"]})
    assert get(store, "dep").state == "failed"
    assert claim_due(store) == [], "a dependant of a failed job was claimable at once"
    clock.advance(2)
    assert claim_due(store) == ["dep"]
    settled(store, "dep", attempt=2, exit_code=0)
    assert claim_due(store) == ["after-failed", "after-processing"]


# -- survivor 4: an attempt's output replaces the previous attempt's, even when it is empty


def test_a_retry_that_prints_nothing_replaces_the_previous_attempts_output(
    store: Store, clock: FakeClock
) -> None:
    add(store, {"id": "a", "max_retries": 1})
    claim_due(store)
    settled(store, "a", attempt=1, exit_code=1, output=b"first attempt\n")
    assert output(store, "a") == b"first attempt\n"
    clock.advance(2)
    claim_due(store)
    settled(store, "a", attempt=2, exit_code=0, output=b"")
    assert output(store, "a") == b"", "the second attempt shows the first attempt's output"


# -- retry timing (issue 18): exact run_at values on the fake clock, not real-time gaps


@pytest.mark.parametrize(
    ("base", "maximum", "waits_s"),
    [(2, 3600, [2, 4, 8]), (3, 10, [3, 9, 10]), (1.5, 3600, [1.5, 2.25, 3.375])],
)
def test_each_retry_is_due_exactly_its_backoff_after_the_attempt_finished(
    store: Store, clock: FakeClock, base: float, maximum: float, waits_s: list[float]
) -> None:
    store.set_config("backoff_base", base)
    store.set_config("backoff_max", maximum)
    add(store, {"id": "a", "max_retries": len(waits_s)})
    for attempt, wait_s in enumerate(waits_s, 1):
        assert claim_due(store) == ["a"]
        clock.advance(0.25)  # the attempt runs for a while: the wait counts from its end
        settlement = settled(store, "a", attempt=attempt, exit_code=1)
        due = clock.now_ms() + round(wait_s * 1000)
        assert (settlement.state, settlement.run_at_ms) == ("failed", due)
        assert get(store, "a").run_at_ms == due
        assert next_due(store) == due, "the runner would not wake for the retry"
        clock.advance(wait_s - 0.001)
        assert claim_due(store) == []
        clock.advance(0.001)
    assert claim_due(store) == ["a"]
    assert settled(store, "a", attempt=len(waits_s) + 1, exit_code=1).state == "dead"
    assert next_due(store) is None


# -- the missed wakeup (issue 18): the claim itself reports when the next job falls due


def test_the_claim_reports_the_next_due_instant_from_its_own_transaction(
    store: Store, clock: FakeClock
) -> None:
    # A separate "when is the next job due?" read after the claim could miss a job that fell
    # due between the two; the exchange answers both from one transaction and one `now`.
    [job] = add(store, {"id": "a", "delay": "1s"})
    exchange = store.finish_and_claim("r1", [], 1, None, LEASE_S)
    assert (exchange.claims, exchange.next_due_ms) == ([], job.run_at_ms)
    clock.advance(1)
    exchange = store.finish_and_claim("r1", [], 1, None, LEASE_S)
    assert [c.id for c in exchange.claims] == ["a"]
