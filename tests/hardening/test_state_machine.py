"""Random sequences of store operations on the fake clock, checked against a small model.

A hypothesis state machine enqueues, claims, completes and fails jobs, lets leases expire and
reaps them, retries dead jobs, cancels and purges, on the real store (a SQLite file, and a
PostgreSQL database). After every step the store must agree with the model: each job's state
and attempts, the counts, the claim order, and the DLQ rule (dead only after 1 + max_retries
runs, or at once for a no-retry exit code). Writers that were fenced out (a stale owner or
claim, a lease that was reaped, a cancelled job) must change nothing, also when the job was run
again since with the same attempt number (a DLQ retry, a requeue). A cancelled attempt keeps
its lease until its owner reports it gone (or the lease is reaped); its job, requeued, waits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from queuectl import Queue
from queuectl.errors import NotFoundError, WrongStateError
from queuectl.lifecycle import Outcome
from queuectl.models import STATES
from tests.support.clock import FakeClock

LEASE_S = 30
OWNERS = ("runner-a", "runner-b")
NO_RETRY = 64
ACTIVE = ("pending", "processing", "failed")
FINISHED = ("completed", "dead", "cancelled")

#: Sequences of steps that broke the model once, committed: every run replays them before it
#: draws new ones, so a failure found at random is reproduced by every later run on every
#: machine, not lost with its seed. Read-only, because Hypothesis deletes a replayed example
#: that no longer fails, and these must stay as regression tests once their bug is fixed. A
#: new failure is saved in FOUND (replayed by later local runs); to keep it, copy what FOUND
#: holds into EXAMPLES and commit it with the fix.
EXAMPLES = Path(__file__).with_name("state_machine_examples")
FOUND = Path(__file__).parents[2] / ".hypothesis" / "state_machine"


class MachineKey(ExampleDatabase):
    """`db` with every example of a machine under the machine's name. Hypothesis keys a test's
    examples by a digest of its own source too: an upgrade of Hypothesis would leave every
    committed example unread, and nothing would say so."""

    SUFFIXES = (b".secondary", b".pareto")  # Hypothesis' other corpora of a test

    def __init__(self, db: ExampleDatabase, machine: str) -> None:
        super().__init__()
        self.db = db
        self.machine = machine.encode()

    def _key(self, key: bytes) -> bytes:
        return self.machine + next((s for s in self.SUFFIXES if key.endswith(s)), b"")

    def save(self, key: bytes, value: bytes) -> None:
        self.db.save(self._key(key), value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.db.fetch(self._key(key))

    def delete(self, key: bytes, value: bytes) -> None:
        self.db.delete(self._key(key), value)


def examples(machine: str) -> ExampleDatabase:
    return MultiplexedDatabase(
        ReadOnlyDatabase(MachineKey(DirectoryBasedExampleDatabase(EXAMPLES), machine)),
        MachineKey(DirectoryBasedExampleDatabase(FOUND), machine),
    )


@dataclass
class Model:
    """What the store should hold for one job."""

    seq: int
    priority: int
    max_retries: int
    no_retry: bool
    state: str = "pending"
    attempts: int = 0
    run_at_ms: int = 0
    owner: str | None = None
    lease_until_ms: int | None = None
    last_error: str | None = None
    token: int = 0  # the job's claims counted: never reset, unlike attempts

    @property
    def dying(self) -> bool:
        """Cancelled while it ran, and its owner has not reported its processes gone."""
        return self.owner is not None and self.state != "processing"


def snapshot(queue: Queue) -> str:
    """Every job with its lease, and its output: what a fenced-out writer must not change."""
    jobs = []
    for job in queue._store.list_jobs().jobs:
        jobs.append(
            {
                **job.to_dict(),
                "lease_owner": job.lease_owner,
                "lease": job.lease_expires_at_ms,
                "output": queue.output(job.id).hex(),
            }
        )
    return json.dumps(jobs, sort_keys=True)


class QueueMachine(RuleBasedStateMachine):
    """The store under random operations; `target_factory` gives each run an empty store."""

    target_factory: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.queue = Queue(type(self).target_factory(), clock=self.clock)
        self.store = self.queue._store
        self.model: dict[str, Model] = {}
        self.seq = 0
        #: Attempts that ended without their owner: (job id, owner, attempt, token).
        self.late: list[tuple[str, str, int, int]] = []
        self.attempts_seen: dict[str, int] = {}

    def teardown(self) -> None:
        try:
            active = [job_id for job_id, m in self.model.items() if m.state in ACTIVE]
            if active:
                self.store.cancel(active)
            for job_id, m in self.model.items():
                if m.owner is not None:  # running or dying: its processes reported gone
                    gone = Outcome(
                        job_id, m.attempts, None, None, None, abandoned=True, token=m.token
                    )
                    self.store.finish_and_claim(m.owner, [gone], 0, None, LEASE_S)
            for state in FINISHED:
                self.queue.purge(state, 0)
            assert self.store.list_jobs().jobs == []
        finally:
            self.queue.close()

    # -- helpers

    def now(self) -> int:
        return self.clock.now_ms()

    def pick(self, index: int, states: tuple[str, ...] = STATES) -> str | None:
        ids = sorted(job_id for job_id, m in self.model.items() if m.state in states)
        return ids[index % len(ids)] if ids else None

    def has(self, *states: str) -> bool:
        return any(m.state in states for m in self.model.values())

    def settle(self, job_id: str, exit_code: int | None, error: str | None) -> None:
        """The model's own reading of SPEC section 3 for the end of the current attempt."""
        m = self.model[job_id]
        m.owner = m.lease_until_ms = None
        if error is None and exit_code == 0:
            m.state, m.last_error = "completed", None
            return
        reason = error or f"exit code {exit_code}: out"  # every attempt here prints "out"
        if error is None and m.no_retry and exit_code == NO_RETRY:
            m.state, m.last_error = "dead", f"{reason} (not retried)"
        elif m.attempts > m.max_retries:
            m.state, m.last_error = "dead", reason
        else:
            # the default backoff: base 2, no jitter, far below backoff_max
            m.state, m.last_error = "failed", reason
            m.run_at_ms = self.now() + 2**m.attempts * 1000

    # -- rules

    @rule(
        priority=st.sampled_from([0, 0, 1]),
        max_retries=st.integers(0, 2),
        no_retry=st.booleans(),
        count=st.integers(1, 3),
    )
    def enqueue(self, priority: int, max_retries: int, no_retry: bool, count: int) -> None:
        batch = []
        for _ in range(count):
            self.seq += 1
            batch.append(
                {
                    "id": f"job-{self.seq}",
                    "command": "true",
                    "priority": priority,
                    "max_retries": max_retries,
                    "no_retry_exit_codes": [NO_RETRY] if no_retry else [],
                }
            )
        jobs = self.queue.enqueue_many(batch)
        assert [job.state for job in jobs] == ["pending"] * count
        for item in batch:
            self.model[item["id"]] = Model(
                self.seq, priority, max_retries, no_retry, run_at_ms=self.now()
            )

    @rule(owner=st.sampled_from(OWNERS), want=st.integers(1, 4))
    def claim(self, owner: str, want: int) -> None:
        exchange = self.store.finish_and_claim(owner, [], want, None, LEASE_S)
        settled, claims = exchange.settled, exchange.claims
        assert settled == {}
        due = sorted(
            (
                job_id
                for job_id, m in self.model.items()
                if m.state in ("pending", "failed") and m.run_at_ms <= self.now() and not m.dying
            ),
            key=lambda j: (-self.model[j].priority, self.model[j].run_at_ms, self.model[j].seq),
        )
        assert [c.id for c in claims] == due[:want]
        for c in claims:
            m = self.model[c.id]
            m.attempts += 1
            m.token += 1
            assert (c.attempt, c.token) == (m.attempts, m.token)
            m.state, m.owner, m.lease_until_ms = "processing", owner, self.now() + LEASE_S * 1000

    @precondition(lambda self: self.has("processing"))
    @rule(index=st.integers(0, 99), exit_code=st.sampled_from([0, 0, 1, NO_RETRY]))
    def finish(self, index: int, exit_code: int) -> None:
        job_id = self.pick(index, ("processing",))
        assert job_id is not None
        m = self.model[job_id]
        owner = m.owner
        assert owner is not None
        self.now()
        outcome = Outcome(job_id, m.attempts, exit_code, None, 10, b"out", token=m.token)
        exchange = self.store.finish_and_claim(owner, [outcome], 0, None, LEASE_S)
        settled, claims = exchange.settled, exchange.claims
        assert list(settled) == [job_id]
        assert claims == []
        self.settle(job_id, exit_code, None)
        assert settled[job_id].state == m.state

    @precondition(lambda self: self.has("processing"))
    @rule(index=st.integers(0, 99), how=st.sampled_from(["owner", "older", "newer"]))
    def stale_writer(self, index: int, how: str) -> None:
        """A runner that is not (or no longer) the job's owner reports: nothing changes."""
        job_id = self.pick(index, ("processing",))
        assert job_id is not None
        m = self.model[job_id]
        owner, attempt, token = m.owner, m.attempts, m.token
        if how == "owner":
            owner = next(o for o in (*OWNERS, "stranger") if o != m.owner)
        else:
            token += -1 if how == "older" else 1
        self.assert_fenced_out(job_id, str(owner), attempt, token)

    @precondition(lambda self: bool(self.late))
    @rule(index=st.integers(0, 99))
    def late_writer(self, index: int) -> None:
        """The owner of an attempt that was reaped or cancelled reports at last: nothing changes."""
        job_id, owner, attempt, token = self.late[index % len(self.late)]
        if job_id in self.model:
            self.assert_fenced_out(job_id, owner, attempt, token)

    @precondition(lambda self: any(m.dying for m in self.model.values()))
    @rule(index=st.integers(0, 99))
    def dying_attempt_gone(self, index: int) -> None:
        """The owner of a cancelled attempt reports its processes gone: its lease is let go,
        and its job, if requeued, may start."""
        dying = sorted(job_id for job_id, m in self.model.items() if m.dying)
        job_id = dying[index % len(dying)]
        m = self.model[job_id]
        assert m.owner is not None
        outcome = Outcome(job_id, m.attempts, None, None, None, abandoned=True, token=m.token)
        settled = self.store.finish_and_claim(m.owner, [outcome], 0, None, LEASE_S).settled
        assert settled == {}
        m.owner = m.lease_until_ms = None

    def assert_fenced_out(self, job_id: str, owner: str, attempt: int, token: int) -> None:
        before = snapshot(self.queue)
        self.now()
        outcome = Outcome(job_id, attempt, 0, None, 10, b"late", token=token)
        settled = self.store.finish_and_claim(owner, [outcome], 0, None, LEASE_S).settled
        assert settled == {}
        assert self.store.release(owner, job_id, token) is False
        assert snapshot(self.queue) == before

    @rule(seconds=st.sampled_from([0.5, 2, 4, 8, LEASE_S + 1]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reap_expired(self) -> None:
        recovered = self.store.reap([])
        expired = {
            job_id
            for job_id, m in self.model.items()
            if m.owner is not None
            and m.lease_until_ms is not None
            and m.lease_until_ms < self.now()
        }
        assert set(recovered) == {job_id for job_id in expired if not self.model[job_id].dying}
        for job_id in expired:
            m = self.model[job_id]
            assert m.owner is not None
            if m.dying:  # nobody is left to say its processes are gone: let go
                m.owner = m.lease_until_ms = None
                continue
            self.late.append((job_id, m.owner, m.attempts, m.token))
            self.settle(job_id, None, "worker lost")

    @precondition(lambda self: self.has("dead"))
    @rule(index=st.integers(0, 99), every=st.booleans())
    def dlq_retry(self, index: int, every: bool) -> None:
        if every:
            retried = self.queue.retry(all=True)
        else:
            job_id = self.pick(index, ("dead",))
            assert job_id is not None
            retried = self.queue.retry(job_id)
        assert retried
        for job_id in retried:
            m = self.model[job_id]
            assert m.state == "dead"
            m.state, m.attempts, m.run_at_ms = "pending", 0, self.now()
            m.last_error = None  # the last error lives on in the history
            self.attempts_seen[job_id] = 0  # the one way attempts may go down

    @precondition(lambda self: bool(self.model))
    @rule(index=st.integers(0, 99))
    def retry_not_dead(self, index: int) -> None:
        job_id = self.pick(index, ("pending", "processing", "failed", "completed", "cancelled"))
        if job_id is None:
            return
        before = snapshot(self.queue)
        with pytest.raises(WrongStateError):
            self.queue.retry(job_id)
        assert snapshot(self.queue) == before

    @precondition(lambda self: bool(self.model))
    @rule(index=st.integers(0, 99))
    def cancel(self, index: int) -> None:
        job_id = self.pick(index)
        assert job_id is not None
        m = self.model[job_id]
        if m.state in FINISHED:
            before = snapshot(self.queue)
            with pytest.raises(WrongStateError):
                self.queue.cancel(job_id)
            assert snapshot(self.queue) == before
            return
        self.queue.cancel(job_id)
        if m.state == "processing":  # its lease stays until its owner reports it gone
            assert m.owner is not None
            self.late.append((job_id, m.owner, m.attempts, m.token))
        m.state, m.last_error = "cancelled", "cancelled"

    @precondition(lambda self: self.has(*FINISHED))
    @rule(index=st.integers(0, 99))
    def requeue(self, index: int) -> None:
        job_id = self.pick(index, FINISHED)
        assert job_id is not None
        assert self.queue.requeue(job_id) == [job_id]
        m = self.model[job_id]
        m.state, m.attempts, m.run_at_ms, m.last_error = "pending", 0, self.now(), None
        self.attempts_seen[job_id] = 0

    @rule(state=st.sampled_from(FINISHED))
    def purge(self, state: str) -> None:
        count = self.queue.purge(state, 0)
        # A cancelled job whose attempt still dies is kept: its lease holds its lock and slot.
        gone = [job_id for job_id, m in self.model.items() if m.state == state and not m.dying]
        assert count == len(gone)
        for job_id in gone:
            del self.model[job_id]
            self.attempts_seen.pop(job_id, None)
        for job_id in gone:
            with pytest.raises(NotFoundError):
                self.queue.get(job_id)

    # -- invariants

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        jobs = [job for job in self.store.list_jobs().jobs]
        ids = [job.id for job in jobs]
        assert len(ids) == len(set(ids)), "a job is listed twice"
        assert set(ids) == set(self.model)
        for job in jobs:
            m = self.model[job.id]
            assert (job.state, job.attempts) == (m.state, m.attempts), job.id
            assert job.last_error == m.last_error, job.id
            assert (job.lease_owner, job.lease_expires_at_ms) == (m.owner, m.lease_until_ms)
            if job.state in ("pending", "failed"):
                assert job.run_at_ms == m.run_at_ms, job.id
            if job.state == "dead":
                assert job.attempts == 1 + job.max_retries or (
                    job.last_error is not None
                    and job.last_error.endswith("(not retried)")
                    and job.exit_code == NO_RETRY
                ), job
            # attempts never go down, but by a DLQ retry (recorded as it happens)
            assert job.attempts >= self.attempts_seen.get(job.id, 0), job.id
            self.attempts_seen[job.id] = job.attempts

    @invariant()
    def counts_add_up(self) -> None:
        counts = self.queue.status()["counts"]
        assert set(counts) == set(STATES)
        by_state: dict[str, set[str]] = {}
        for state in STATES:
            listed = {job.id for job in self.queue.list(state=state)}
            assert counts[state] == len(listed), state
            for other, ids in by_state.items():
                assert not listed & ids, f"a job is both {state} and {other}"
            by_state[state] = listed
        assert sum(counts.values()) == len(self.model)
        expected = {state: sum(m.state == state for m in self.model.values()) for state in STATES}
        assert counts == expected

    @invariant()
    def counters_match_a_full_count(self) -> None:
        # the trigger-kept counters (migration 0004) against a count of every stored job
        counts: dict[str, dict[str, int]] = {}
        attempts: dict[str, dict[str, int]] = {}
        for job in self.store.list_jobs().jobs:
            per_state = counts.setdefault(job.queue, {})
            per_state[job.state] = per_state.get(job.state, 0) + 1
            summed = attempts.setdefault(job.queue, {})
            summed[job.state] = summed.get(job.state, 0) + job.attempts
        assert self.store.counts() == counts
        assert self.store.attempts_by_queue() == attempts


def run_machine(name: str, target_factory: Any, max_examples: int) -> None:
    machine = type(name, (QueueMachine,), {"target_factory": staticmethod(target_factory)})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=examples(name),
        ),
    )


def test_the_committed_examples_are_replayed() -> None:
    # Each store's machine finds its examples, under whatever key Hypothesis asks for.
    for name in ("SQLiteMachine", "PostgresMachine"):
        assert list(examples(name).fetch(b"any digest")), name


def test_sqlite_store_follows_the_model(tmp_path: Path) -> None:
    counter = iter(range(10**6))

    def fresh() -> str:
        return str(tmp_path / f"queue-{next(counter)}.db")

    run_machine("SQLiteMachine", fresh, max_examples=60)


@pytest.fixture
def pg_url() -> Iterator[str]:
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url


def test_postgres_store_follows_the_model(pg_url: str) -> None:
    # One database for every run: each run's teardown cancels and purges what it made, and
    # checks the store is empty again (a fresh clone per run would cost up to a second).
    run_machine("PostgresMachine", lambda: pg_url, max_examples=25)
