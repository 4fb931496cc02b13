"""Wakeups for runners on one SQLite file: each runner binds a Unix datagram socket in a
private folder named after the database; a writer sends a byte to every socket there.

A lost wakeup only delays work until the runner's slow poll, so every send is best effort.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import _socket
    import socket

RUNTIME_ROOT = "/tmp"


def wakeup_folder(db_path: str) -> str:
    """The folder of sockets for one database; short enough for a socket path anywhere."""
    # Two checksums, not hashlib: OpenSSL's import costs the CLI's start-up. A collision
    # would only send a spurious wakeup.
    path = os.path.realpath(db_path).encode()
    digest = f"{zlib.crc32(path):08x}{zlib.adler32(path):08x}"
    return os.path.join(RUNTIME_ROOT, f"queuectl-{os.getuid()}", digest)


def private_folder(path: str) -> bool:
    """Create the folder 0700 if needed; refuse to use one someone else could write into."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        for folder in (os.path.dirname(path), path):
            info = os.lstat(folder)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
                return False
            if info.st_mode & 0o077:
                os.chmod(folder, 0o700)
    except OSError:
        return False
    return True


class SocketWakeup:
    """Sends wakeups to the runners of a database, and receives them for one runner."""

    def __init__(self, db_path: str) -> None:
        self.folder = wakeup_folder(db_path)
        self._sender: _socket.socket | None = None
        self._receiver: socket.socket | None = None
        self._address: str | None = None

    def notify(self) -> None:
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        if not names:
            return
        if self._sender is None:
            # Only when there is a runner to wake, and only the C module: `socket`'s import
            # (enum classes, selectors) costs a one-shot `queuectl enqueue` milliseconds
            # between its commit and the runner's start of the job.
            import _socket

            self._sender = _socket.socket(_socket.AF_UNIX, _socket.SOCK_DGRAM)
            self._sender.setblocking(False)
        for name in names:
            address = os.path.join(self.folder, name)
            if address == self._address:
                continue
            try:
                self._sender.sendto(b"!", address)
            except BlockingIOError:
                pass  # its buffer is full of wakeups already
            except OSError as exc:
                if exc.errno == errno.ECONNREFUSED:
                    with contextlib.suppress(OSError):
                        os.unlink(address)  # its runner is gone

    def bind(self, name: str) -> socket.socket | None:
        """The socket one runner waits on; None if the folder is not private (polling only)."""
        if not private_folder(self.folder):
            return None
        import socket

        address = os.path.join(self.folder, f"{name}.sock")
        receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
        receiver.bind(address)
        receiver.setblocking(False)
        self._receiver, self._address = receiver, address
        return receiver

    def fileno(self) -> int:
        assert self._receiver is not None, "bind() first"
        return self._receiver.fileno()

    def drain(self) -> None:
        """Read every pending wakeup: one wake serves them all."""
        if self._receiver is None:
            return
        with contextlib.suppress(BlockingIOError, InterruptedError):
            while self._receiver.recv(512):
                pass

    def close(self) -> None:
        for sock in (self._sender, self._receiver):
            if sock is not None:
                sock.close()
        if self._address:
            with contextlib.suppress(OSError):
                os.unlink(self._address)
        self._sender = self._receiver = None
        self._address = None
