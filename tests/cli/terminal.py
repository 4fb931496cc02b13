"""Run the real CLI with its stdout on a pseudo-terminal of a given width, as a user sees it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from dataclasses import dataclass

from tests.support.cli import QUEUECTL

#: CSI sequences (colours, styles) that rich writes on a terminal.
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Screen:
    returncode: int
    raw: str  # what reached the terminal, escape sequences included
    stderr: str

    @property
    def text(self) -> str:
        """The output as read on screen: styles removed, one entry per line."""
        return ANSI.sub("", self.raw).replace("\r\n", "\n")

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def in_terminal(
    target: str,
    *args: str,
    columns: int = 80,
    env: dict[str, str] | None = None,
    typed: str | None = None,
    stderr_too: bool = False,
) -> Screen:
    """`queuectl ARGS` on `target` with stdout on a terminal `columns` wide (COLUMNS too);
    with `typed`, stdin is that terminal too and `typed` is what the user types; with
    `stderr_too`, stderr as well (what it wrote is then on the screen)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    full_env = {**os.environ, "QUEUECTL_DB": target, "COLUMNS": str(columns), "TERM": "xterm"}
    for name in ("NO_COLOR", "FORCE_COLOR", "QUEUECTL_DEBUG", "TTY_COMPATIBLE"):
        full_env.pop(name, None)
    full_env.update(env or {})
    process = subprocess.Popen(
        [QUEUECTL, *args],
        stdin=subprocess.DEVNULL if typed is None else follower,
        stdout=follower,
        stderr=follower if stderr_too else subprocess.PIPE,
        env=full_env,
    )
    os.close(follower)
    if typed is not None:
        os.write(leader, typed.encode())
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    stderr = ""
    if process.stderr is not None:
        stderr = process.stderr.read().decode()
        process.stderr.close()
    process.wait(timeout=60)
    return Screen(process.returncode, b"".join(chunks).decode(), stderr)
