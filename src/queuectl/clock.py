"""The clock a store writes its instants with (epoch milliseconds), as a Protocol: the real one
here, the database server's in store/postgres.py, a fake one in the tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """The current instant, epoch milliseconds."""
        ...


class SystemClock:
    """This host's wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000
