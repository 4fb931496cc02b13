"""The watchdog: a small process beside each runner that kills its jobs if the runner dies.

The runner writes, on a pipe, `+aJOB:TOKEN` before a job starts (TOKEN: its claim's token), `+PGID`
once it has, and `-PGID` and `-aJOB:TOKEN` when it ends; `+pPID:START` and `-pPID:START` for a job's process that
left its group (found by the subreaper's walk), and `cPATH` for the cgroup that holds every job's
cgroup. When the pipe closes (the runner exited, was SIGKILLed or crashed), every recorded group,
process (if its start time still matches) and cgroup is SIGKILLed, and so is every process whose
environment names a recorded claim: a job spawned, or a daemon it made, since the runner last
told of them. This keeps the runner's fast spawn path: nothing runs in the child before exec.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from queuectl.runner.limits import remove_cgroup
from queuectl.runner.tree import (
    EMPTY_WAIT_S,
    Tree,
    kill_attempts,
    populated,
    read_start,
)

# After a read, let the runner's lines pile up for this long: a busy runner then wakes its
# watchdog a few times a second rather than twice per job (each wakeup is a context switch
# on a machine whose cores are spawning jobs). An idle watchdog blocks in read and costs nothing.
BATCH_S = 0.05


class Watchdog:
    """The runner's end: starts the watchdog, and tells it (in batches) what dies with it."""

    def __init__(self, log: Callable[..., Any], runner_id: str) -> None:
        self.log = log
        self.lines: list[bytes] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "queuectl.runner.watchdog", runner_id],
            stdin=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def watch(self, line: str) -> None:
        """Tell the watchdog (at the next flush) which process groups die with this runner."""
        self.lines.append(line.encode() + b"\n")

    def flush(self, tree: Tree) -> None:
        """Send what it was told, and what `tree` found, in one write."""
        if tree.watch:
            self.lines.extend(f"{line}\n".encode() for line in tree.watch)
            tree.watch.clear()
        stdin = self.process.stdin
        if not self.lines or stdin is None:
            return
        data, self.lines = b"".join(self.lines), []
        try:
            os.write(stdin.fileno(), data)
        except BrokenPipeError:
            self.log(
                "watchdog_lost",
                "the watchdog died: jobs may outlive a crash of this runner",
                important=True,
            )

    def close(self) -> None:
        """Close the pipe (the watchdog kills what it was told of that is left) and wait."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def main() -> None:
    # Terminal signals are for the runner; the watchdog ends only when its pipe does.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd = sys.stdin.fileno()
    groups: set[int] = set()
    processes: set[tuple[int, int]] = set()
    runner_id = sys.argv[1]
    attempts: set[tuple[str, str, int]] = set()
    cgroups: list[str] = []
    pending = b""
    while chunk := os.read(fd, 1 << 16):
        *lines, pending = (pending + chunk).split(b"\n")
        for word in lines:
            if word[:2] in (b"+a", b"-a"):
                job_id, token = word[2:].decode().rsplit(":", 1)
                if word[:1] == b"+":
                    attempts.add((runner_id, job_id, int(token)))
                else:
                    attempts.discard((runner_id, job_id, int(token)))
            elif word[:2] in (b"+p", b"-p"):
                number, start = word[2:].split(b":")
                entry = (int(number), int(start))
                if word[:1] == b"+":
                    processes.add(entry)
                else:
                    processes.discard(entry)
            elif word[:1] == b"+":
                groups.add(int(word[1:]))
            elif word[:1] == b"-":
                groups.discard(int(word[1:]))
            elif word[:1] == b"c":
                cgroups.append(word[1:].decode())
        time.sleep(BATCH_S)
    for path in cgroups:
        with contextlib.suppress(OSError), open(f"{path}/cgroup.kill", "w") as handle:
            handle.write("1")
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    for pid, started in processes:
        info = read_start(pid)
        if info is not None and info[0] == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    if attempts:
        kill_attempts(attempts)
    give_up = time.monotonic() + EMPTY_WAIT_S
    for path in cgroups:
        while populated(path) and time.monotonic() < give_up:
            time.sleep(0.01)
        remove_cgroup(path)


if __name__ == "__main__":
    main()
