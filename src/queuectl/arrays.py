"""Job arrays: the SPEC of `enqueue --array` (`1-100`, `0-98:2`, `1,5,9`, `%N`) as indices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from queuectl.errors import InvalidInputError
from queuectl.flow import MAX_LIMIT

#: More jobs than this in one array is surely a slip of the keyboard.
MAX_ARRAY = 10_000_000
# ASCII digits only: \d and str.isdigit() also take other scripts' digits and superscripts,
# which int() reads as numbers or refuses with a ValueError.
_PART = re.compile(r"([0-9]{1,12})(?:-([0-9]{1,12})(?::([0-9]{1,12}))?)?")
_LIMIT = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class ArraySpec:
    """The indices of an array, as ranges (start, stop inclusive, step), and its batch's
    concurrency limit (None: none)."""

    ranges: tuple[tuple[int, int, int], ...]
    limit: int | None

    def __len__(self) -> int:
        return sum((stop - start) // step + 1 for start, stop, step in self.ranges)

    def indices(self) -> Iterator[int]:
        """Each index, in the order given, without building the list (arrays are long)."""
        for start, stop, step in self.ranges:
            yield from range(start, stop + 1, step)


def parse_array(spec: str) -> ArraySpec:
    """`1-100`, `0-98:2`, `1,5,9` (parts may mix), with an optional `%N` after them."""
    text, _, limit_text = spec.strip().partition("%")
    limit: int | None = None
    if limit_text or spec.strip().endswith("%"):
        if not _LIMIT.fullmatch(limit_text) or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise InvalidInputError(
                f"--array {spec!r}: %N must be a whole number of jobs at once, "
                f"from 1 to {MAX_LIMIT}"
            )
        limit = int(limit_text)
    ranges: list[tuple[int, int, int]] = []
    for part in text.split(","):
        found = _PART.fullmatch(part.strip())
        if found is None:
            raise InvalidInputError(
                f"--array {spec!r}: {part.strip()!r} is not an index, A-B or A-B:STEP "
                "(e.g. 1-100, 0-98:2, 1,5,9, 1-100%10)"
            )
        start = int(found[1])
        stop = start if found[2] is None else int(found[2])
        step = 1 if found[3] is None else int(found[3])
        if stop < start:
            raise InvalidInputError(f"--array {spec!r}: {part.strip()!r} ends before it starts")
        if step < 1:
            raise InvalidInputError(f"--array {spec!r}: a step must be at least 1")
        ranges.append((start, stop, step))
    array = ArraySpec(tuple(ranges), limit)
    if len(array) > MAX_ARRAY:
        raise InvalidInputError(f"--array {spec!r}: more than {MAX_ARRAY} jobs")
    seen: set[int] = set()
    if len(ranges) > 1:  # an index twice would be the same job id twice
        for index in array.indices():
            if index in seen:
                raise InvalidInputError(f"--array {spec!r}: index {index} appears twice")
            seen.add(index)
    return array
