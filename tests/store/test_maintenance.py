"""Retention deletes exactly the finished jobs old enough, while runners claim and settle the
rest (SPEC 9.4): never a job that runs, waits or is dead, never one a runner still settles."""

from __future__ import annotations

import threading

from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.store import open_store

LEASE_S = 30.0


def test_expiry_racing_two_runners_deletes_only_finished_jobs(target: str) -> None:
    setup = open_store(target)
    setup.set_config("backoff_base", 1)  # a failed attempt is retried a second later
    jobs = [new_job({"command": "true", "id": f"ok{n}", "max_retries": 1}) for n in range(200)]
    jobs += [new_job({"command": "true", "id": f"dead{n}", "max_retries": 0}) for n in range(20)]
    jobs += [new_job({"command": "true", "id": f"later{n}", "delay": "1h"}) for n in range(20)]
    setup.enqueue_many(jobs)
    settled: list[int] = []
    done = threading.Event()

    def run(owner: str) -> None:
        """Claims two at a time; each `ok` job fails its first attempt (it then holds a
        finished_at while it waits and runs again), `dead` ones fail for good."""
        store = open_store(target)
        outcomes: list[Outcome] = []
        idle_since = None
        while True:
            exchange = store.finish_and_claim(owner, outcomes, 2, None, LEASE_S)
            settled.append(len(exchange.settled))
            outcomes = [
                Outcome(c.id, c.attempt, 0 if c.attempt == 2 else 1, None, 1, token=c.token)
                for c in exchange.claims
            ]
            if exchange.claims:
                idle_since = None
            elif idle_since is None:
                idle_since = store.now()
            elif store.now() - idle_since > 3_000:  # retries are due within a second
                break
        store.close()

    def expire() -> None:
        store = open_store(target)
        while not done.is_set():
            store.expire(["completed", "cancelled"], store.now(), 7)
        store.close()

    runners = [threading.Thread(target=run, args=(f"r{i}",)) for i in range(2)]
    expirer = threading.Thread(target=expire)
    for thread in (*runners, expirer):
        thread.start()
    for thread in runners:
        thread.join(120)
    done.set()
    expirer.join(30)
    assert sum(settled) == 200 * 2 + 20, "every attempt's result was written"
    left = {job.id: job.state for job in setup.list_jobs().jobs}
    assert {i: s for i, s in left.items() if not i.startswith("ok")} == {
        **{f"dead{n}": "dead" for n in range(20)},
        **{f"later{n}": "pending" for n in range(20)},
    }
    assert set(left.values()) <= {"completed", "dead", "pending"}
    assert setup.expire(["completed", "cancelled"], setup.now() + 1, 1000) == sum(
        1 for i in left if i.startswith("ok")
    )
    assert setup.counts() == {"default": {"dead": 20, "pending": 20}}
    setup.close()
