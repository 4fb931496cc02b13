"""Recovering the jobs of runners that are gone: a runner's maintenance, or `worker recover`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from queuectl.runner.liveness import is_dead, kill_leftovers, live_local

if TYPE_CHECKING:
    from queuectl.store import Runner, Store


@dataclass(frozen=True)
class Recovered:
    """What a recovery did."""

    runners: list[str]  # the dead runners it unregistered
    jobs: list[str]  # the jobs it recovered as 'worker lost'
    killed: int  # the processes of lost attempts it killed


def recover(
    store: Store,
    runners: Sequence[Runner],
    dead: Sequence[Runner],
    now_ms: int,
    lease_s: float,
    mine: Sequence[str] = (),
) -> Recovered:
    """Recover the jobs of the `dead` runners (unregistering them) and of expired leases, but
    never those of a live runner of this host, nor of `mine` (the caller's own). First kill
    what the `runners` of this host that are gone, or stopped past their lease, left running:
    a job must not run again, nor free its slot or lock, while its processes live."""
    killed = kill_leftovers(store, list(runners), now_ms, lease_s)
    spared = [*mine, *live_local(list(runners), now_ms, lease_s)]
    jobs = store.reap([r.id for r in dead], exclude=spared)
    return Recovered([r.id for r in dead], jobs, killed)


def recover_now(store: Store) -> Recovered:
    """Judge every registered runner as a runner would, and recover what the dead left."""
    runners = store.runners()
    lease_s = float(store.config()["lease_seconds"])
    now_ms = store.now()
    dead = [r for r in runners if is_dead(r, now_ms, lease_s)]
    return recover(store, runners, dead, now_ms, lease_s)
