"""The pure backoff function."""

from __future__ import annotations

import pytest

from queuectl.retry import backoff_delay


@pytest.mark.parametrize(("k", "wait"), [(1, 2.0), (2, 4.0), (3, 8.0), (10, 1024.0), (12, 3600.0)])
def test_backoff_is_base_to_the_k_capped_at_max(k: int, wait: float) -> None:
    assert backoff_delay(k, 2, 3600) == wait


def test_backoff_counts_from_the_first_failure() -> None:
    assert backoff_delay(0, 2, 3600) == backoff_delay(1, 2, 3600) == 2.0


def test_backoff_base_one_waits_one_second() -> None:
    assert [backoff_delay(k, 1, 3600) for k in (1, 5, 100)] == [1.0, 1.0, 1.0]


def test_backoff_max_zero_means_no_wait() -> None:
    assert backoff_delay(3, 2, 0) == 0.0


def test_backoff_does_not_overflow() -> None:
    assert backoff_delay(100, 1e300, 3600.0) == 3600.0
    assert backoff_delay(10_000, 2.0, 60.0) == 60.0


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.999999])
@pytest.mark.parametrize("jitter", [0.0, 0.1, 0.5, 1.0])
def test_jitter_factor_lies_in_one_minus_j_to_one(rand: float, jitter: float) -> None:
    base = backoff_delay(3, 2, 3600)
    waited = backoff_delay(3, 2, 3600, jitter, rand)
    assert base * (1 - jitter) - 1e-9 <= waited <= base
    assert waited == pytest.approx(base * (1 - jitter * rand))


def test_no_jitter_ignores_the_draw() -> None:
    assert backoff_delay(2, 2, 3600, 0.0, 0.7) == 4.0
