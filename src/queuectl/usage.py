"""What attempts cost, added up: the buckets of their peak memory, and the rows that count them
per queue (the store keeps one per minute, and the totals since it began)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Bounds of the peak-memory histogram, in bytes: 1 MiB to 64 GiB, by fours.
PEAK_BOUNDS_BYTES = tuple(1 << (20 + 2 * step) for step in range(9))
NO_PEAK = -1  # the bucket of attempts that recorded no peak
OVER_ALL_BOUNDS = -2  # the bucket of peaks above every bound


def size_name(count: int) -> str:
    """`512 MiB`: a number of bytes in the largest unit that divides it whole."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    unit = 0
    while unit + 1 < len(units) and count and count % (1024 ** (unit + 1)) == 0:
        unit += 1
    return f"{count // 1024**unit} {units[unit]}"


def peak_bound(peak: int | None) -> int:
    """The bucket of a peak: the smallest bound that holds it."""
    if peak is None:
        return NO_PEAK
    return next((bound for bound in PEAK_BOUNDS_BYTES if peak <= bound), OVER_ALL_BOUNDS)


@dataclass(frozen=True)
class Usage:
    """Attempts of a queue whose peaks fell in one bucket: how many, their CPU time, and the sum
    of their peaks."""

    queue: str
    bound_bytes: int
    n: int
    cpu_ms: int
    peak_bytes: int


def tally(ended: Iterable[tuple[str, int | None, int | None]]) -> list[Usage]:
    """Rows for attempts that ended, given as (queue, cpu_ms, max_rss_bytes)."""
    rows: dict[tuple[str, int], list[int]] = {}
    for queue, cpu_ms, peak in ended:
        row = rows.setdefault((queue, peak_bound(peak)), [0, 0, 0])
        row[0] += 1
        row[1] += cpu_ms or 0
        row[2] += peak or 0
    return [Usage(queue, bound, *row) for (queue, bound), row in sorted(rows.items())]
