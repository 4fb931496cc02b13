"""Dependants enqueued by two threads while what they wait for is being settled by a real
runner (jobs held at a gate, then let go at once): a job must never go on waiting for a
dependency that already finished the way it waits for, nor run after a batch that did not
complete."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from tests.hostile.conftest import Shared
from tests.support.runners import wait_until

#: Jobs that wait on a dependency which has met their condition: each would wait forever.
STUCK = """
SELECT b.id FROM jobs b JOIN job_deps d ON d.job_id = b.id JOIN jobs a ON a.id = d.dep_id
WHERE b.state = 'pending' AND b.waiting_on > 0
  AND (a.state = 'completed' OR (d.cond = 'finished' AND a.state IN ('dead', 'cancelled')))
"""


def stuck(target: str) -> list[str]:
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            return [row[0] for row in conn.execute(STUCK)]
    with sqlite3.connect(target) as conn:
        return [row[0] for row in conn.execute(STUCK)]


def test_a_dependant_enqueued_as_its_dependency_ends_is_let_go(
    shared: Shared, tmp_path: Path
) -> None:
    q = shared.queue
    firsts: list[str] = []
    thens: list[str] = []
    for n in range(4):
        go = tmp_path / f"go{n}"
        round_ = [
            q.enqueue(f"until [ -e {go} ]; do sleep 0.01; done", queue="race").id for _ in range(3)
        ]
        wait_until(
            lambda round_=round_: all(q.get(j).state == "processing" for j in round_), 20, "A"
        )

        def enqueue(made: list[str], round_: list[str] = round_) -> None:
            for i in range(30):
                on: Any = round_[i % 3] if i % 2 else {"id": round_[i % 3], "on": "finished"}
                made.append(q.enqueue("true", queue="race", depends_on=[on]).id)

        enqueuers = [threading.Thread(target=enqueue, args=(thens,)) for _ in range(2)]
        for enqueuer in enqueuers:
            enqueuer.start()
        go.touch()
        for enqueuer in enqueuers:
            enqueuer.join(60)
        firsts += round_
    shared.finished(*firsts)
    assert stuck(shared.target) == []
    shared.finished(*thens)


def test_a_job_after_a_batch_that_is_finishing_badly_is_cancelled(
    shared: Shared, tmp_path: Path
) -> None:
    """Jobs enqueued --after-batch B while B's last jobs end, one with a failure: each must be
    cancelled (on PostgreSQL one would read B as finished, and its counts from before it
    finished: completed, and ran)."""
    q = shared.queue
    afters: dict[str, list[str]] = {}
    for n in range(8):
        batch, go = f"fin{n}", tmp_path / f"go{n}"
        command = f'until [ -e {go} ]; do sleep 0.01; done; [ "$QUEUECTL_ARRAY_INDEX" -ne 2 ]'
        q.enqueue_array("1-3", {"id": batch, "command": command, "max_retries": 0})
        wait_until(
            lambda batch=batch: q.batch(batch)["counts"]["processing"] == 3, 20, f"{batch} to run"
        )
        made: list[str] = []
        enqueuers = [
            threading.Thread(
                target=lambda batch=batch, made=made: made.extend(
                    q.enqueue("true", after_batch=[batch]).id for _ in range(30)
                )
            )
            for _ in range(2)
        ]
        for enqueuer in enqueuers:
            enqueuer.start()
        go.touch()
        for enqueuer in enqueuers:
            enqueuer.join(60)
        afters[batch] = made
    everything = [job_id for made in afters.values() for job_id in made]
    shared.finished(*everything)
    ran = [job_id for job_id in everything if q.get(job_id).state != "cancelled"]
    assert ran == []
