"""Deadlines: a job not started by its `expires` instant is cancelled by a runner's
maintenance with its dependants, and never claimed meanwhile; on both stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from queuectl import Queue
from queuectl.durations import ms_to_iso
from queuectl.errors import InvalidInputError
from tests.support.clock import FakeClock
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until

LEASE_S = 30.0
EXPIRED = "expired before it started"


@pytest.fixture
def fake(target: str) -> Iterator[tuple[Queue, FakeClock]]:
    """A queue on the fake clock; its store claims as a runner would."""
    clock = FakeClock()
    opened = Queue(target, clock)
    yield opened, clock
    opened.close()


def claimed(queue: Queue) -> list[str]:
    exchange = queue._store.finish_and_claim("r1", [], 10, None, LEASE_S)
    return sorted(c.id for c in exchange.claims)


def test_a_job_past_its_deadline_is_never_claimed_and_expires_with_its_dependants(
    fake: tuple[Queue, FakeClock],
) -> None:
    queue, clock = fake
    soon = queue.enqueue("true", id="soon", expires="10s", delay="5s")
    assert soon.expires_at_ms == soon.created_at_ms + 10_000
    queue.enqueue("true", id="child", depends_on=["soon"])
    queue.enqueue("true", id="ok", expires=ms_to_iso(queue.now_ms() + 60_000), delay="5s")
    assert queue._store.expire_unstarted() == []
    found = queue.explain("soon")
    assert found["expires_at"] == ms_to_iso(soon.expires_at_ms)
    assert "cancelled (expired)" in found["message"]

    clock.advance(11)
    assert claimed(queue) == ["ok"]  # due, not expired: it starts; `soon` never does
    assert queue._store.expire_unstarted() == ["soon"]
    job = queue.get("soon")
    assert (job.state, job.last_error, job.attempts) == ("cancelled", EXPIRED, 0)
    assert queue.get("child").state == "cancelled"
    clock.advance(120)
    assert queue._store.expire_unstarted() == []  # `ok` started in time
    assert queue.get("ok").state == "processing"


def test_expiry_works_in_batches_and_a_requeue_forgets_a_passed_deadline(
    fake: tuple[Queue, FakeClock],
) -> None:
    queue, clock = fake
    ids = [queue.enqueue("true", expires="1s", delay="1m").id for _ in range(7)]
    clock.advance(2)
    assert len(queue._store.expire_unstarted(3)) == 3
    assert len(queue._store.expire_unstarted(3)) == 3
    assert len(queue._store.expire_unstarted(3)) == 1
    assert all(queue.get(i).last_error == EXPIRED for i in ids)
    queue.requeue(ids[0])
    assert queue.get(ids[0]).expires_at_ms is None
    assert claimed(queue) == [ids[0]]


def test_expires_is_validated(fake: tuple[Queue, FakeClock]) -> None:
    queue, _ = fake
    for bad in ("soon", "-5s", 0, True, "2026-13-01T00:00:00Z"):
        with pytest.raises(InvalidInputError):
            queue.enqueue("true", expires=bad)


def test_a_runner_cancels_what_expired_before_it_started(
    cli: Cli, cli_json: Callable[..., Any], queue: Queue, start_runner: Callable[..., Any]
) -> None:
    start_runner("--queue", "served")
    late = ok(cli("enqueue", "--queue", "unserved", "--expires", "1s", "-c", "true")).strip()
    child = queue.enqueue("true", queue="served", depends_on=[late]).id
    refused(cli("enqueue", "--expires", "whenever", "-c", "true"))
    assert "expires_at" in cli_json("explain", late)
    wait_until(all_in(queue, "cancelled", late, child), 15, "the late job to expire")
    assert queue.get(late).last_error == EXPIRED
    assert queue.get(late).attempts == 0
