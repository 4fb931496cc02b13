"""Which process holds a SQLite file's write lock, read from /proc/locks (Linux only).

SQLite takes POSIX record locks: in WAL mode the writer holds byte 120 of the -shm file
(121 checkpoints, 122 recovery); in rollback mode a writer holds a WRITE lock on the
database file itself. /proc/locks lists each lock with its pid and the file's device and inode.
"""

from __future__ import annotations

import contextlib
import os

#: Byte offsets in the -shm file of the write, checkpoint and recovery locks (WAL mode).
_SHM_WRITER_BYTES = range(120, 123)


def _identity(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return os.major(info.st_dev), os.minor(info.st_dev), info.st_ino


def write_lock_holder(db_path: str) -> int | None:
    """The pid of another process holding `db_path`'s write lock, or None if none is seen."""
    real = os.path.realpath(db_path)  # SQLite puts -shm beside the file a symlink names
    shm = _identity(f"{real}-shm")
    db = _identity(real)
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.readlines()
    except OSError:
        return None  # not Linux, or no /proc
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 3784 fe:00:1466569 120 120"; a "->" line is a waiter
        if len(fields) != 8 or fields[1] != "POSIX" or fields[3] != "WRITE":
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            where = (int(major, 16), int(minor, 16), int(inode))
            start = int(fields[6])
            end = int(fields[7]) if fields[7] != "EOF" else 2**63
        except ValueError:
            continue
        if pid <= 0 or pid == os.getpid():  # 0: a process in a PID namespace not ours
            continue
        if where == shm and any(start <= byte <= end for byte in _SHM_WRITER_BYTES):
            return pid
        if where == db:
            return pid
    return None


def is_stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP, Ctrl-Z) or stopped by a tracer."""
    with contextlib.suppress(OSError, IndexError), open(f"/proc/{pid}/stat") as handle:
        # "1234 (name) T ...": the name may hold spaces and parentheses; the state follows
        # the last ")".
        return handle.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    return False
