"""Holding jobs before they run: held jobs are never claimed until released, on both stores."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.errors import WrongStateError
from queuectl.store import Store
from tests.support.clock import FakeClock
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until

LEASE_S = 30.0


@pytest.fixture
def store(target: str) -> Iterator[tuple[Queue, FakeClock]]:
    """A queue on the fake clock; its store claims as a runner would."""
    clock = FakeClock()
    opened = Queue(target, clock)
    yield opened, clock
    opened.close()


def claimed(store: Store, want: int = 10) -> list[str]:
    return sorted(c.id for c in store.finish_and_claim("r1", [], want, None, LEASE_S).claims)


def test_a_held_job_is_never_claimed_delayed_or_failed_until_released(
    store: tuple[Queue, FakeClock],
) -> None:
    queue, clock = store
    s = queue._store
    now = queue.now_ms()
    plain = queue.enqueue("true", id="plain")
    held = queue.enqueue("true", id="held", held=True)
    later = queue.enqueue("true", id="later", delay="10s")
    assert (held.held, plain.held) == (True, False)
    queue.hold("later")
    clock.advance(20)  # `later` is due now: promotion must still leave it out
    assert claimed(s) == ["plain"]
    assert s.finish_and_claim("r1", [], 5, None, LEASE_S).next_due_ms is None
    assert (queue.get("later").held, queue.get("later").state) == (True, "pending")
    assert queue.explain("held")["reason"] == "held"
    assert [j.id for j in queue.list(held=True)] == ["later", "held"]
    assert [j.id for j in queue.list(state="pending", queue="default", held=True)] == [
        "later",
        "held",
    ]

    released = queue.release("held", "later")
    assert [(j.id, j.held) for j in released] == [("held", False), ("later", False)]
    assert claimed(s) == ["held", "later"]
    assert queue.list(held=True) == []
    assert now <= queue.get("held").started_at_ms  # type: ignore[operator]
    assert later.run_at_ms > now


def test_hold_refuses_a_running_or_finished_job_and_holds_none_then(
    store: tuple[Queue, FakeClock],
) -> None:
    queue, _ = store
    s = queue._store
    queue.enqueue("true", id="running")
    assert claimed(s) == ["running"]
    queue.enqueue("true", id="waiting")
    queue.enqueue("true", id="gone")
    queue.cancel("gone")
    for other in ("running", "gone"):
        with pytest.raises(WrongStateError):
            queue.hold("waiting", other)
        assert not queue.get("waiting").held  # all or none
    with pytest.raises(WrongStateError):
        queue.release("gone")
    assert queue.hold("waiting", "waiting")[0].held  # twice: held once


def test_hold_and_release_under_a_runner_from_the_cli(
    cli: Cli, cli_json: Callable[..., Any], queue: Queue, start_runner: Callable[..., Any]
) -> None:
    held = ok(cli("enqueue", "--hold", "-c", "true")).strip()
    start_runner("--count", "2")
    free = queue.enqueue("true").id
    wait_until(all_in(queue, "completed", free), 15, "the free job to run")
    shown = cli_json("show", held)
    assert (shown["state"], shown["held"], shown["attempts"]) == ("pending", True, 0)
    assert cli_json("explain", held)["reason"] == "held"
    assert [j["id"] for j in cli_json("list", "--held")] == [held]

    running = queue.enqueue("sleep 30").id
    wait_until(all_in(queue, "processing", running), 15, "the long job to start")
    line = refused(cli("hold", running), 1)
    assert "processing" in line
    refused(cli("hold", free), 1)
    refused(cli("release", free), 1)

    ok(cli("release", held))
    wait_until(all_in(queue, "completed", held), 15, "the released job to run")
    queue.cancel(running)


def test_hold_and_release_a_whole_queue(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    night = [queue.enqueue("true", queue="night").id for _ in range(5)]
    result = cli("hold", "--queue", "night")
    assert (result.returncode, result.stderr.strip()) == (0, "held 5 jobs of queue 'night'")
    start_runner("--count", "2")
    day = queue.enqueue("true", queue="day").id
    wait_until(all_in(queue, "completed", day), 15, "the day job to run")
    assert all(j.state == "pending" and j.attempts == 0 for j in map(queue.get, night))
    refused(cli("hold", night[0], "--queue", "night"))
    result = cli("release", "--queue", "night")
    assert (result.returncode, result.stderr.strip()) == (0, "released 5 jobs of queue 'night'")
    wait_until(all_in(queue, "completed", *night), 15, "the released queue to run")


def test_hold_races_the_claim_of_a_running_runner(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    """Each hold, sent as the runner wakes to claim its job, either finds the job claimed
    (refused: it runs) or wins (it never runs until released)."""
    start_runner("--count", "4")
    marks = tmp_path / "ran"
    outcomes: dict[str, bool] = {}
    for n in range(40):
        job_id = queue.enqueue(f"echo {n} >> {marks}", id=f"race{n}").id
        time.sleep(0.0005 * (n % 8))
        try:
            queue.hold(job_id)
            outcomes[job_id] = True
        except WrongStateError:
            outcomes[job_id] = False
    lost = [j for j, won in outcomes.items() if not won]
    won = [j for j, won in outcomes.items() if won]
    wait_until(all_in(queue, "completed", *lost), 20, "the jobs claimed first to run")
    time.sleep(1.0)  # a hold that lost silently would show its job run by now
    for job in map(queue.get, won):
        assert (job.state, job.attempts, job.held) == ("pending", 0, True), job.id
    ran = {int(line) for line in marks.read_text().split()} if lost else set()
    assert ran == {int(j[4:]) for j in lost}
    assert won, "every hold came too late: no race"
    assert lost, "every hold came first: no race"
    queue.release(*won)
    wait_until(all_in(queue, "completed", *won), 20, "the released jobs to run")


def test_hold_and_release_a_batch_leave_its_running_and_finished_jobs_and_other_batches(
    store: tuple[Queue, FakeClock],
) -> None:
    from queuectl.errors import NotFoundError
    from queuectl.lifecycle import Outcome

    queue, _ = store
    s = queue._store
    queue.enqueue_many(
        [{"id": f"b{n}", "command": "true", "batch": "b", "queue": "q"} for n in range(7)]
    )
    queue.enqueue("true", id="other", batch="o", queue="q")
    queue.enqueue("true", id="loose", queue="q")
    ended = s.finish_and_claim("r1", [], 3, ["q"], LEASE_S).claims  # b0, b1, b2
    outcomes = [Outcome(c.id, 1, 1 if c.id == "b0" else 0, None, 5, token=c.token) for c in ended]
    s.finish_and_claim("r1", outcomes[:2], 0, None, LEASE_S)  # b0 failed, b1 completed
    running = s.finish_and_claim("r1", [], 1, ["q"], LEASE_S).claims  # b3 runs
    assert [c.id for c in running] == ["b3"]
    assert [queue.get(f"b{n}").state for n in range(4)] == [
        "failed",
        "completed",
        "processing",
        "processing",
    ]
    # Two a transaction: the walk goes on past each batch of two.
    assert s.hold_batch("b", 2) == 4  # b0 (failed), b4, b5, b6
    assert {j.id for j in queue.list(held=True)} == {"b0", "b4", "b5", "b6"}
    assert claimed(s) == ["loose", "other"]
    assert queue.hold_batch("b") == 0  # held already
    assert s.release_batch("b", 3) == 4
    assert queue.list(held=True) == []
    assert queue.release_batch("b") == 0
    for unknown in (queue.hold_batch, queue.release_batch):
        with pytest.raises(NotFoundError):
            unknown("nope")


def test_hold_and_release_a_batch_from_the_cli(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    ok(cli("enqueue", "--array", "1-6", "--id", "frames", "--command", "true"))
    result = cli("hold", "--batch", "frames")
    assert (result.returncode, result.stderr.strip()) == (0, "held 6 jobs of batch 'frames'")
    start_runner("--count", "2")
    loose = queue.enqueue("true").id
    wait_until(all_in(queue, "completed", loose), 15, "the job outside the batch to run")
    assert {j.id for j in queue.list(held=True)} == {f"frames.{n}" for n in range(1, 7)}
    refused(cli("hold", "--batch", "frames", "--queue", "default"))
    refused(cli("release", "frames.1", "--batch", "frames"))
    assert "nope" in refused(cli("hold", "--batch", "nope"), 1)
    result = cli("release", "--batch", "frames")
    assert (result.returncode, result.stderr.strip()) == (0, "released 6 jobs of batch 'frames'")
    wait_until(lambda: queue.batch("frames")["completed"], 15, "the released batch to run")
