"""A clock that moves only when a test says so, for stores whose subject is time."""

from __future__ import annotations


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)
