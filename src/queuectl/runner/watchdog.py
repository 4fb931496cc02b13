"""The watchdog: a small process beside each runner that kills its jobs if the runner dies.

The runner writes `+PGID` when a job starts and `-PGID` when it ends, on a pipe. When the
pipe closes (the runner exited, was SIGKILLed or crashed), every process group still recorded
is SIGKILLed. This keeps subprocess's fast spawn path: no preexec_fn, no prctl in the child.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def main() -> None:
    # Terminal signals are for the runner; the watchdog ends only when its pipe does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    groups: set[int] = set()
    for line in sys.stdin.buffer:
        word = line.strip()
        if word[:1] == b"+":
            groups.add(int(word[1:]))
        elif word[:1] == b"-":
            groups.discard(int(word[1:]))
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
