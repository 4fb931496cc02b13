"""How a bulk change sizes its batches from the time its transactions held the write lock."""

from __future__ import annotations

from queuectl.store.actions import Pacer


def test_batches_start_small_and_at_most_double_while_they_are_quick() -> None:
    pacer = Pacer(500, target_s=0.04, first=50)
    sizes = [pacer.size]
    for _ in range(6):
        pacer.took(pacer.size, 0.001)  # far quicker than the target
        sizes.append(pacer.size)
    assert sizes == [50, 100, 200, 400, 500, 500, 500]


def test_a_slow_batch_shrinks_the_next_to_what_fits_the_target() -> None:
    pacer = Pacer(500, target_s=0.04, first=400)
    pacer.took(400, 0.2)  # half a millisecond a job: 80 fit in 40 ms
    assert pacer.size == 80
    pacer.took(80, 0.04)
    assert pacer.size == 80
    pacer.took(80, 10.0)  # a job alone takes longer than the target: one at a time
    assert pacer.size == 1
    pacer.took(0, 0.5)  # nothing found: nothing learnt
    assert pacer.size == 1


def test_the_most_and_the_first_are_bounds() -> None:
    assert Pacer(1).size == 1
    assert Pacer(10, first=50).size == 10
    pacer = Pacer(10, first=5)
    pacer.took(5, 0.0)
    assert pacer.size == 10
