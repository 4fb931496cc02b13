"""Who this runner is (host, pid, process start time), and whether a runner on this host is alive.

A pid alone can be reused; the process start time (with the boot id) cannot, so a runner whose
pid now belongs to another process is recognised as gone.
"""

from __future__ import annotations

import os
import socket
from functools import cache


@cache
def host_name() -> str:
    """This host's identity; `QUEUECTL_HOSTNAME` overrides it (tests of several hosts)."""
    return os.environ.get("QUEUECTL_HOSTNAME") or socket.gethostname()


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def process_started(pid: int) -> str | None:
    """An identity of the process's start (boot id and start tick), or None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields are counted after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return f"{_boot_id()}:{fields[19].decode()}"


def is_alive(pid: int, pid_started: str | None) -> bool:
    """Whether the process `pid` that started at `pid_started` still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    if _exited(pid):
        return False
    if pid_started is None:
        return True
    now_started = process_started(pid)
    return now_started is None or now_started == pid_started


def _exited(pid: int) -> bool:
    """Whether `pid` is a zombie: exited, its status not yet collected by its parent."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 :][:1] in (b"Z", b"X")
