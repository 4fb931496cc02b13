"""Clocks for tests whose subject is time: one that moves only when a test says so, for
stores; a shifted wall clock (libfaketime) for real processes."""

from __future__ import annotations

from pathlib import Path


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start_ms: int = 1_800_000_000_000) -> None:
        self.ms = start_ms

    def now_ms(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


def stepped_clock(offset: Path) -> dict[str, str]:
    """The environment that shifts a process's wall clock (not its monotonic clock) by the
    offset written in the file `offset` ("+10": ten seconds ahead), read again on every call."""
    import libfaketime

    library = Path(libfaketime.__file__).parent / "vendor/libfaketime/src/libfaketime.so.1"
    return {
        "LD_PRELOAD": str(library),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
    }
