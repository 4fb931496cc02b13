"""What attempts cost, counted per minute and in total as each settlement writes it: once per
attempt settled, none for an attempt reaped or cancelled, whichever claim started it and
whether the runner's retry rules came with the outcome (PostgreSQL's one round trip) or not."""

from __future__ import annotations

import pytest

from queuectl.lifecycle import Fence, Outcome
from queuectl.models import new_job
from queuectl.store import Claim, Store
from tests.support.clock import FakeClock

LEASE_S = 30.0
MIB = 1024 * 1024


def measured(claim: Claim, exit_code: int, cpu_ms: int, rules: bool) -> Outcome:
    fence = None
    if rules:
        assert claim.max_retries is not None
        fence = Fence(claim.attempt, claim.token, claim.max_retries, claim.no_retry_exit_codes)
    return Outcome(
        claim.id,
        claim.attempt,
        exit_code,
        None,
        40,
        fence=fence,
        token=claim.token,
        cpu_ms=cpu_ms,
        max_rss_bytes=5 * MIB,
    )


def claim_one(store: Store, owner: str) -> Claim:
    [claim] = store.finish_and_claim(owner, [], 1, None, LEASE_S).claims
    return claim


def totals(store: Store) -> list[tuple[str, int, int, int]]:
    return [(u.queue, u.bound_bytes, u.n, u.cpu_ms) for u in store.usage_totals()]


# How the job is claimed: the plain claim, the one statement under concurrency limits, and
# the claim of chosen candidates (a job with a lock).
CLAIMS = {"plain": {}, "counted": {"queue": "limited"}, "chosen": {"lock": "k"}}


@pytest.mark.parametrize("rules", [True, False], ids=["rules", "no_rules"])
@pytest.mark.parametrize("how", sorted(CLAIMS))
def test_each_attempt_settled_counts_its_cost_once(
    store: Store, clock: FakeClock, how: str, rules: bool
) -> None:
    if how == "counted":
        store.set_limits("limited", 5, None)  # (else every claim would be under flow control)
    fields: dict[str, object] = {"command": "true", "id": "j", "max_retries": 2, **CLAIMS[how]}
    store.enqueue_many([new_job(fields)])
    first = claim_one(store, "r1")
    retried = store.finish_and_claim("r1", [measured(first, 3, 7, rules)], 0, None, LEASE_S)
    assert retried.settled["j"].state == "failed"
    since = clock.now_ms()
    assert totals(store) == [("default" if how != "counted" else "limited", 16 * MIB, 1, 7)]

    # The next attempt is cancelled while it runs: it measured nothing, and counts nothing,
    # though the job still shows what the one before cost.
    clock.advance(3600)
    assert claim_one(store, "r2").attempt == 2
    store.cancel(["j"])
    assert [u.n for u in store.usage_totals()] == [1]

    # Another job's attempt is lost with its runner: none either; a third job's settled
    # attempt adds its own.
    other = {**fields, "lock": None}  # "k" is still held by the cancelled attempt
    store.enqueue_many([new_job({**other, "id": "lost"})])
    claim_one(store, "r3")
    clock.advance(LEASE_S + 1)
    assert store.reap([]) == ["lost"]
    store.enqueue_many([new_job({**other, "id": "ok"})])
    last = claim_one(store, "r4")
    store.finish_and_claim("r4", [measured(last, 0, 5, rules)], 0, None, LEASE_S)
    assert [(u.n, u.cpu_ms) for u in store.usage_totals()] == [(2, 12)]
    assert store.cpu_since(since - 60_000) == 12
