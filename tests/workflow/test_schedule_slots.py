"""Once per slot, on the fake clock: two firing runners (two stores on one target), N slots,
exactly N jobs; a duplicate firing is refused. On every backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from queuectl import Queue
from queuectl.schedule import slot_job_id
from queuectl.store import Firing, Schedule, Store, open_store
from tests.support.clock import FakeClock

SLOTS = 12
Fired = list[Firing]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runners(target: str, clock: FakeClock) -> Iterator[tuple[Store, Store]]:
    """The stores of two runners on one target, on one fake clock."""
    first, second = open_store(target, clock), open_store(target, clock)
    yield first, second
    first.close()
    second.close()


@pytest.fixture
def tick(target: str, clock: FakeClock) -> Iterator[tuple[Queue, Schedule]]:
    """A queue on the target and its schedule `tick`, every second from now."""
    queue = Queue(target, clock=clock)
    schedule = queue.add_schedule("tick", {"command": "true"}, every="1s")
    assert schedule.next_at_ms == clock.now_ms() + 1000
    clock.advance(0.25)  # runners fire a little after each slot, never on it
    yield queue, schedule
    queue.close()


def job_ids(queue: Queue) -> list[str]:
    return sorted(job.id for job in queue.list())


def test_two_runners_firing_in_turn_enqueue_one_job_per_slot(
    runners: tuple[Store, Store], tick: tuple[Queue, Schedule], clock: FakeClock
) -> None:
    queue, schedule = tick
    anchor = schedule.created_at_ms
    for n in range(1, SLOTS + 1):
        clock.advance(1)
        first, second = runners if n % 2 else runners[::-1]
        assert first.fire_schedules() == [
            Firing("tick", slot_job_id("tick", anchor + n * 1000), None)
        ]
        assert second.fire_schedules() == [], f"slot {n} fired twice"
        assert second.next_schedule_ms() == anchor + (n + 1) * 1000
    assert job_ids(queue) == sorted(
        slot_job_id("tick", anchor + n * 1000) for n in range(1, SLOTS + 1)
    )


def test_two_runners_firing_at_the_same_moment_enqueue_one_job_per_slot(
    runners: tuple[Store, Store], tick: tuple[Queue, Schedule], clock: FakeClock
) -> None:
    queue, schedule = tick
    barrier = threading.Barrier(2, timeout=30)

    def fire(store: Store) -> list[Fired]:
        results = []
        for _ in range(SLOTS):
            barrier.wait()  # the clock moves only between slots, while both wait here
            results.append(store.fire_schedules())
            barrier.wait()
            if store is runners[0]:
                clock.advance(1)
        return results

    clock.advance(1)
    with ThreadPoolExecutor(2) as pool:
        per_runner = list(pool.map(fire, runners))

    for n, (a, b) in enumerate(zip(*per_runner, strict=True), 1):
        slot_job = slot_job_id("tick", schedule.created_at_ms + n * 1000)
        assert sorted([a, b], key=len) == [[], [Firing("tick", slot_job, None)]], f"slot {n}"
    assert len(job_ids(queue)) == SLOTS


def test_a_duplicate_firing_of_a_slot_is_refused_and_adds_no_job(
    runners: tuple[Store, Store], tick: tuple[Queue, Schedule], clock: FakeClock
) -> None:
    queue, schedule = tick
    first, second = runners
    clock.advance(1)
    slot = schedule.next_at_ms
    assert first.fire_schedules() == [Firing("tick", slot_job_id("tick", slot), None)]

    # A runner that still sees the slot as due (a stale view of the schedule) fires it again.
    clock.advance(0.5)
    first.add_schedule(
        Schedule(
            name="tick",
            cron=None,
            every_s=1.0,
            tz=None,
            job=schedule.job,
            created_at_ms=schedule.created_at_ms,
            last_at_ms=None,
            next_at_ms=slot,
        )
    )
    [firing] = second.fire_schedules()
    assert (firing.schedule, firing.job_id) == ("tick", None)
    assert firing.error is not None
    assert f"'{slot_job_id('tick', slot)}' already exists" in firing.error
    assert job_ids(queue) == [slot_job_id("tick", slot)]
    assert second.next_schedule_ms() == slot + 1000


def test_slots_missed_while_no_runner_fired_are_enqueued_once_late(
    runners: tuple[Store, Store], tick: tuple[Queue, Schedule], clock: FakeClock
) -> None:
    queue, schedule = tick
    clock.advance(5)  # five slots pass with no runner up
    assert runners[0].fire_schedules() == [
        Firing("tick", slot_job_id("tick", schedule.next_at_ms), None)
    ]
    assert runners[1].fire_schedules() == []
    assert job_ids(queue) == [slot_job_id("tick", schedule.next_at_ms)]
    assert runners[1].next_schedule_ms() == schedule.created_at_ms + 6000
    [listed] = queue.schedules()
    assert listed.last_at_ms == clock.now_ms()
