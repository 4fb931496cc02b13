"""The backoff arithmetic: pure, no I/O, no clock."""

from __future__ import annotations


def backoff_delay(
    failed_attempts: int, base: float, maximum: float, jitter: float = 0.0, rand: float = 1.0
) -> float:
    """Seconds to wait after the k-th failed attempt: min(max, base ** k), times a jitter factor.

    `rand` is a uniform draw in [0, 1); with jitter j the factor lies in [1 - j, 1].
    """
    k = max(1, failed_attempts)
    try:
        delay = min(maximum, base**k)
    except OverflowError:
        delay = maximum
    return delay * (1.0 - jitter * rand)
