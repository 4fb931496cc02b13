"""Turns at a SQLite file's write lock: a writer that had to wait for it says so, and one about
to begin a transaction lets such a waiter go first (Linux).

SQLite's lock is not a queue: whoever asks when it is free takes it. A process that commits and
begins again at once (a bulk change's batches, a loop of enqueues, a busy runner's claims) asks
first every time, and one that found the lock taken only gets it if it asks in a gap, however
long it has waited. So a waiter holds a shared lock on byte 0 of a file beside the database's
private folder (see wakeup.py) until it has the write lock; a writer about to begin looks for
one (F_GETLK, one system call) and, if there is, waits until it has had its turn, a short
while at most. A stopped waiter is not waited for.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import sys
import time

from queuectl.store import lockholder
from queuectl.store.wakeup import private_folder, wakeup_folder

#: struct flock on Linux: l_type, l_whence, (padding), l_start, l_len, l_pid, (padding).
_FLOCK = "hhqqi4x"
#: The longest a writer lets waiters go first before it asks for the lock itself.
YIELD_S = 0.1
#: How often a writer letting waiters go first looks whether they have.
LOOK_S = 0.0005


class Turns:
    """The turns of one process's writers at one SQLite file (none where unsupported)."""

    def __init__(self, db_path: str) -> None:
        self.folder = wakeup_folder(db_path)
        self._fd: int | None = None
        self._off = not sys.platform.startswith("linux")
        self._waiting = False

    def _file(self) -> int | None:
        if self._fd is None and not self._off:
            try:
                if not private_folder(self.folder):
                    raise OSError("not a private folder")
                self._fd = os.open(
                    f"{self.folder}.writers",  # beside the folder of runners' sockets
                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                    0o600,
                )
            except OSError:
                self._off = True  # no turns: each writer asks in turn as SQLite lets it
        return self._fd

    def waiter(self) -> int | None:
        """The pid of another process waiting for the write lock, if any."""
        fd = self._file()
        if fd is None:
            return None
        try:
            got = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(_FLOCK, fcntl.F_WRLCK, 0, 0, 1, 0))
        except OSError:
            return None
        kind, _, _, _, pid = struct.unpack(_FLOCK, got)
        return None if kind == fcntl.F_UNLCK else int(pid)

    def after_waiters(self, longest: float = YIELD_S) -> str:
        """Let the processes waiting for the write lock have it first (`longest` at most);
        why this one may go now: "none" waits, "stopped" (the waiter is), or "timeout"."""
        deadline = None
        while (pid := self.waiter()) is not None:
            now = time.monotonic()
            if deadline is None:
                deadline = now + longest
            elif now >= deadline:
                return "timeout"
            elif lockholder.is_stopped(pid):
                return "stopped"
            time.sleep(LOOK_S)
        return "none"

    def wait(self) -> None:
        """This process waits for the write lock: others let it go first."""
        fd = self._file()
        if fd is not None and not self._waiting:
            try:
                fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 0)
                self._waiting = True
            except OSError:
                pass

    def done(self) -> None:
        """This process has the write lock (or gave up waiting for it)."""
        if self._fd is not None and self._waiting:
            self._waiting = False
            with contextlib.suppress(OSError):
                fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, 0)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
