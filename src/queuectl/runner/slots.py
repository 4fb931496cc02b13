"""A runner's worker slots: how many are free, and which attempt runs on which."""

from __future__ import annotations

from queuectl.runner.executor import Attempt


class Slots:
    """`count` worker slots, numbered 0 to count - 1. An attempt holds its slot from its spawn
    until its processes are gone (a cancelled attempt still dying holds one too), so no two
    running attempts share an index."""

    def __init__(self, count: int) -> None:
        self.count = count
        #: By (job id, claim token): a cancelled attempt still dying and a later claim of its
        #: job are two attempts, each killed and reported on its own.
        self.running: dict[tuple[str, int], Attempt] = {}
        self._free = list(range(count - 1, -1, -1))  # taken from the end: the lowest first

    @property
    def free(self) -> int:
        """How many slots no attempt holds."""
        return len(self._free)

    def take(self) -> int:
        """Reserve the lowest free slot for an attempt about to start; its index."""
        return self._free.pop()

    def add(self, attempt: Attempt) -> None:
        """Record a started attempt on the slot reserved for it."""
        self.running[attempt.claim.id, attempt.claim.token] = attempt

    def remove(self, attempt: Attempt) -> None:
        """The attempt's processes are gone: its slot is free again."""
        del self.running[attempt.claim.id, attempt.claim.token]
        self._free.append(attempt.slot)
