"""A fake runner: the test process itself claims jobs and reports how their attempts ended,
through the store's exchange (`finish_and_claim`) as a real runner does, with no process
started. For tests of the store and of what reads show; tests of the runner start real ones
(tests/support/runners.py).

Every function takes the store first (`queue._store` for a Queue). The defaults are a runner
"r1" with a 30-second lease; an attempt ends with exit code 0 after 100 ms, reported for the
job's latest attempt with its claim's token.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from queuectl.lifecycle import Fence, Outcome, Settlement
from queuectl.runner.liveness import host_name, process_started
from queuectl.store import Claim, Exchange, Runner, Store
from tests.support.claims import token_of

OWNER = "r1"
LEASE_S = 30.0


def exchange(
    store: Store,
    outcomes: Sequence[Outcome] = (),
    want: int = 0,
    queues: Sequence[str] | None = None,
    owner: str = OWNER,
    lease_s: float = LEASE_S,
) -> Exchange:
    """One round of the runner's loop: report `outcomes`, claim up to `want` due jobs."""
    return store.finish_and_claim(owner, list(outcomes), want, queues, lease_s)


def claims(
    store: Store,
    want: int = 1,
    queues: Sequence[str] | None = None,
    owner: str = OWNER,
    lease_s: float = LEASE_S,
) -> list[Claim]:
    """Claim up to `want` due jobs (of `queues`): they become processing under `owner`."""
    return exchange(store, (), want, queues, owner, lease_s).claims


def claim(
    store: Store, want: int = 1, queues: Sequence[str] | None = None, owner: str = OWNER
) -> list[str]:
    """The ids of the jobs claimed, in the order the store hands them out."""
    return [c.id for c in claims(store, want, queues, owner)]


def claim_due(store: Store, want: int = 10, owner: str = OWNER) -> list[str]:
    """Claim every due job (up to `want`); their ids sorted, whatever the store's order."""
    return sorted(claim(store, want, None, owner))


def outcome(
    store: Store,
    job_id: str,
    exit_code: int | None = 0,
    *,
    error: str | None = None,
    output: bytes | None = None,
    dropped: int = 0,
    duration_ms: int | None = 100,
    attempt: int | None = None,
    token: int | None = None,
    rules: bool = False,
) -> Outcome:
    """How the attempt of `job_id` ended (by default its latest, with its claim's token).

    `rules`: carry the job's retry rules, as a runner does with those its claim returned (the
    store may then settle without reading them); else the store reads them.
    """
    job = store.get(job_id)
    assert job is not None, f"no job {job_id}"
    attempt = job.attempts if attempt is None else attempt
    token = token_of(store, job_id) if token is None else token
    fence = Fence(attempt, token, job.max_retries, job.no_retry_exit_codes) if rules else None
    return Outcome(
        job_id,
        attempt,
        exit_code,
        error,
        duration_ms,
        output,
        output_dropped=dropped,
        fence=fence,
        token=token,
    )


def ended(
    c: Claim,
    exit_code: int | None = 0,
    output: bytes | None = None,
    *,
    error: str | None = None,
    duration_ms: int | None = 100,
    rules: bool = True,
) -> Outcome:
    """How the attempt of claim `c` ended, with the retry rules the claim returned (`rules`
    False: without them, the store reads them)."""
    fence = None
    if rules:
        fence = Fence(c.attempt, c.token, c.max_retries or 0, c.no_retry_exit_codes)
    return Outcome(
        c.id, c.attempt, exit_code, error, duration_ms, output, fence=fence, token=c.token
    )


def gone(c: Claim) -> Outcome:
    """The runner's word that the processes of the cancelled attempt `c` are gone."""
    return Outcome(c.id, c.attempt, None, None, None, abandoned=True, token=c.token)


def settle(
    store: Store, job_id: str, exit_code: int | None = 0, *, owner: str = OWNER, **how: Any
) -> Settlement | None:
    """Report the end of an attempt of `job_id` (`how`: `outcome`'s keywords); how the store
    settled it, or None when it was fenced out (not, or no longer, `owner`'s)."""
    done = exchange(store, [outcome(store, job_id, exit_code, **how)], 0, None, owner)
    assert done.claims == []
    return done.settled.get(job_id)


def settled(store: Store, job_id: str, exit_code: int | None = 0, **how: Any) -> Settlement:
    """As `settle`, for an attempt that must settle."""
    found = settle(store, job_id, exit_code, **how)
    assert found is not None, f"the end of {job_id}'s attempt was fenced out"
    return found


def finish(store: Store, job_id: str, exit_code: int | None = 0, **how: Any) -> str:
    """Report the end of the running attempt of `job_id` (as `settle`), which must settle; its
    new state."""
    return settled(store, job_id, exit_code, **how).state


def run(
    store: Store, job_id: str, exit_code: int | None = 0, *, owner: str = OWNER, **how: Any
) -> str:
    """Claim `job_id`, which must be the only due job of its queue, and end its attempt (as
    `settle`); its new state."""
    job = store.get(job_id)
    assert job is not None, f"no job {job_id}"
    assert claim(store, 1, [job.queue], owner) == [job_id]
    return finish(store, job_id, exit_code, owner=owner, **how)


def runner_row(
    runner_id: str = OWNER,
    *,
    host: str = "h",
    pid: int = 1,
    workers: int = 1,
    queues: list[str] | None = None,
    at_ms: int = 0,
    pid_started: str | None = None,
) -> Runner:
    """A runner as the store registers it, started and last beaten at `at_ms`."""
    return Runner(runner_id, host, pid, workers, queues, at_ms, at_ms, pid_started)


def register_live(
    store: Store,
    runner_id: str = OWNER,
    workers: int = 1,
    queues: list[str] | None = None,
    at_ms: int | None = None,
) -> Runner:
    """Register this test process as a runner of this host: its pid lives, so no reader takes
    it for dead and no reap takes its jobs. Beaten at `at_ms` (by default, now)."""
    pid = os.getpid()
    runner = runner_row(
        runner_id,
        host=host_name(),
        pid=pid,
        workers=workers,
        queues=queues,
        at_ms=store.now() if at_ms is None else at_ms,
        pid_started=process_started(pid),
    )
    store.register_runner(runner)
    return runner
