"""A runner's worker slots: each running attempt holds an index of its own, 0 to count - 1."""

from __future__ import annotations

import io

from queuectl.runner.executor import Attempt
from queuectl.runner.slots import Slots
from queuectl.store import Claim


def attempt_on(slots: Slots, job_id: str, token: int) -> Attempt:
    claim = Claim(job_id, 1, token, "true", "/", {}, None, "default", 0)
    attempt = Attempt(claim, None, io.BytesIO(), 0, 0.0, None, None, slot=slots.take())
    slots.add(attempt)
    return attempt


def test_each_running_attempt_holds_a_slot_of_its_own() -> None:
    slots = Slots(3)
    first, second, third = (attempt_on(slots, f"job{n}", n) for n in range(3))
    assert [a.slot for a in (first, second, third)] == [0, 1, 2]
    assert slots.free == 0
    slots.remove(second)
    assert slots.free == 1
    # A cancelled attempt still dying and a later claim of its job are two attempts.
    again = attempt_on(slots, "job0", 7)
    assert again.slot == 1
    assert len(slots.running) == 3
    slots.remove(first)
    slots.remove(again)
    assert sorted(a.slot for a in slots.running.values()) == [2]
    assert sorted(attempt_on(slots, f"later{n}", n).slot for n in range(2)) == [0, 1]
