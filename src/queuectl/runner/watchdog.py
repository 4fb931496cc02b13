"""The watchdog: a small process beside each runner that kills its jobs if the runner dies.

The runner writes `+PGID` when a job starts and `-PGID` when it ends, on a pipe. When the
pipe closes (the runner exited, was SIGKILLed or crashed), every process group still recorded
is SIGKILLed. This keeps the runner's fast spawn path: nothing runs in the child before exec.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

# After a read, let the runner's lines pile up for this long: a busy runner then wakes its
# watchdog a few times a second rather than twice per job (each wakeup is a context switch
# on a machine whose cores are spawning jobs). An idle watchdog blocks in read and costs nothing.
BATCH_S = 0.05


def main() -> None:
    # Terminal signals are for the runner; the watchdog ends only when its pipe does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd = sys.stdin.fileno()
    groups: set[int] = set()
    pending = b""
    while chunk := os.read(fd, 1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        for word in lines:
            if word[:1] == b"+":
                groups.add(int(word[1:]))
            elif word[:1] == b"-":
                groups.discard(int(word[1:]))
        time.sleep(BATCH_S)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


if __name__ == "__main__":
    main()
