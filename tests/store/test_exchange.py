"""Settle-and-claim with the retry rules the claim returned (PostgreSQL: one round trip) against
the store's own reading of them: the same jobs, history and counts on every backend."""

from __future__ import annotations

import select
from typing import Any

import pytest

from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.store import Claim, Store, open_store
from tests.support.clock import FakeClock
from tests.support.fake_runner import ended

LEASE_S = 30.0
#: (exit code, error) of each job's one attempt: completed, failed and retried, failed on an
#: exit code that is not retried (dead), timed out (failed).
ENDINGS = {"ok": (0, None), "retry": (3, None), "fatal": (7, None), "slow": (None, "timed out")}


def outcome(claim: Claim, with_rules: bool) -> Outcome:
    code, error = ENDINGS[claim.id.split("-")[0]]
    if with_rules:
        assert claim.max_retries is not None
    return ended(claim, code, b"out", error=error, duration_ms=40, rules=with_rules)


def settle_all(store: Store, prefix: str, with_rules: bool) -> dict[str, Any]:
    """Claim the jobs named `prefix`-*, settle each in an exchange of its own (a dead end takes
    the store's reading of the rules, so it must not share one); what the store holds."""
    claims = store.finish_and_claim("r1", [], 10, [prefix], LEASE_S).claims
    assert len(claims) == len(ENDINGS)
    settled = {}
    for claim in claims:
        exchange = store.finish_and_claim("r1", [outcome(claim, with_rules)], 0, None, LEASE_S)
        settled.update(exchange.settled)
    seen: dict[str, Any] = {"settled": {}, "jobs": {}, "history": {}}
    for job_id, settlement in settled.items():
        name = job_id.split("-")[0]
        seen["settled"][name] = (settlement.state, settlement.last_error)
        job = store.get(job_id)
        assert job is not None
        seen["jobs"][name] = (job.state, job.exit_code, job.last_error, job.lease_owner)
        seen["history"][name] = [
            (a.attempt, a.exit_code, a.error, a.duration_ms, a.finished_at_ms is not None)
            for a in store.history(job_id)
        ]
    seen["counts"] = store.counts().get(prefix)
    return seen


def test_outcomes_with_their_rules_settle_as_those_read_by_the_store(
    store: Store, clock: FakeClock
) -> None:
    for prefix in ("ahead", "read"):
        store.enqueue_many(
            [
                new_job(
                    {
                        "command": "true",
                        "id": f"{name}-{prefix}",
                        "queue": prefix,
                        "no_retry_exit_codes": [7],
                    }
                )
                for name in ENDINGS
            ]
        )
    ahead = settle_all(store, "ahead", with_rules=True)
    read = settle_all(store, "read", with_rules=False)
    assert ahead == read
    assert ahead["settled"] == {
        "ok": ("completed", None),
        "retry": ("failed", "exit code 3: out"),
        "fatal": ("dead", "exit code 7: out (not retried)"),
        "slow": ("failed", "timed out"),
    }


def test_an_outcome_with_its_rules_is_fenced_out_once_the_job_is_not_ours(
    store: Store, clock: FakeClock
) -> None:
    store.enqueue_many([new_job({"command": "true", "id": f"ok-{n}"}) for n in range(2)])
    first, second = store.finish_and_claim("r1", [], 2, None, LEASE_S).claims
    store.cancel([first.id])
    # The second's lease expires, another runner reaps it, and r1 claims it again: its result
    # of the first attempt must not settle the second.
    clock.advance(LEASE_S + 1)
    assert store.reap([], exclude=["r2"]) == [second.id]
    clock.advance(86_400)  # past the retry's backoff
    (again,) = store.finish_and_claim("r1", [], 1, None, LEASE_S).claims
    assert (again.id, again.attempt) == (second.id, 2)
    exchange = store.finish_and_claim(
        "r1", [outcome(first, True), outcome(second, True)], 0, None, LEASE_S
    )
    assert exchange.settled == {}
    cancelled, running = store.get(first.id), store.get(second.id)
    assert cancelled is not None
    assert running is not None
    assert (cancelled.state, cancelled.exit_code) == ("cancelled", None)
    assert (running.state, running.lease_owner, running.attempts) == ("processing", "r1", 2)
    assert [a.exit_code for a in store.history(first.id)] == [None]
    assert [(a.attempt, a.finished_at_ms) for a in store.history(second.id)][-1] == (2, None)


def test_a_completion_with_its_rules_unblocks_and_wakes(target: str, clock: FakeClock) -> None:
    runner_store = open_store(target, clock)
    client = open_store(target, clock)
    listener = client.listener("r2")  # another runner, woken for the dependant
    try:
        client.enqueue_many([new_job({"command": "true", "id": "ok-first"})])
        (claim,) = runner_store.finish_and_claim("r1", [], 1, None, LEASE_S).claims
        client.enqueue_many([new_job({"command": "true", "id": "then", "depends_on": [claim.id]})])
        assert runner_store.finish_and_claim("r1", [], 1, None, LEASE_S).claims == []
        if listener is not None:
            listener.drain()
        exchange = runner_store.finish_and_claim("r1", [outcome(claim, True)], 0, None, LEASE_S)
        assert exchange.settled[claim.id].state == "completed"
        if listener is not None:
            assert select.select([listener], [], [], 5)[0], "no wakeup for the dependant"
        (then,) = runner_store.finish_and_claim("r1", [], 1, None, LEASE_S).claims
        assert then.id == "then"
    finally:
        if listener is not None:
            listener.close()
        client.close()
        runner_store.close()


@pytest.mark.parametrize("flow", [None, "concurrency", "rate", "lock"])
def test_every_claim_returns_the_retry_rules(
    store: Store, clock: FakeClock, flow: str | None
) -> None:
    """The plain claim, the counted claim under concurrency limits and the general flow claim
    (a rate, a lock) all return them: the runner's outcome then settles in one round trip."""
    rules_given = {"max_retries": 5, "no_retry_exit_codes": [2]}
    lock = {"lock": "k"} if flow == "lock" else {}
    store.enqueue_many([new_job({"command": "true", "id": "a", **rules_given, **lock})])
    if flow == "concurrency":
        store.set_limits("default", 1, None)
    elif flow == "rate":
        store.set_limits("default", None, (5, 1000))
    (claim,) = store.finish_and_claim("r1", [], 1, None, LEASE_S).claims
    assert (claim.max_retries, claim.no_retry_exit_codes) == (5, [2])
