"""One attempt of one job: `/bin/sh -c COMMAND` in its own session, output to an unnamed file.

The output goes to a temporary file rather than a pipe: no reader thread per job, no hang when
a background grandchild keeps the descriptor, and the tail is read with pread (which leaves the
child's file offset alone).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from queuectl.store import Claim

KILL_GRACE_S = 1.0


@dataclass
class Attempt:
    """A running attempt and what the supervisor knows about it."""

    claim: Claim
    process: subprocess.Popen[bytes] | None
    output: object  # the unnamed file the command writes to
    started_at_ms: int
    started_mono: float
    deadline: float | None  # monotonic instant of its timeout
    timeout_s: float | None
    kill_at: float | None = None  # monotonic instant of the SIGKILL that follows a SIGTERM
    error: str | None = None  # why it was killed (timeout), or why it could not start
    abandoned: bool = False  # cancelled or no longer ours: its result is not written
    released: bool = False  # stopped by shutdown: given back without using an attempt
    synced_size: int = 0  # output bytes already copied to the store for `logs --follow`
    exit_code: int | None = field(default=None)

    @property
    def pgid(self) -> int | None:
        return None if self.process is None else self.process.pid


def start(claim: Claim, base_env: dict[str, str], default_timeout_s: float) -> Attempt:
    """Spawn the command. A command that cannot start is an attempt that failed at once."""
    env = {**base_env, **claim.env}
    env["QUEUECTL_JOB_ID"] = claim.id
    env["QUEUECTL_ATTEMPT"] = str(claim.attempt)
    timeout_s = claim.timeout or default_timeout_s or None
    output = tempfile.TemporaryFile()
    started_at_ms = time.time_ns() // 1_000_000
    mono = time.monotonic()
    attempt = Attempt(
        claim, None, output, started_at_ms, mono,
        None if timeout_s is None else mono + timeout_s, timeout_s,
    )  # fmt: skip
    try:
        # start_new_session puts the command in its own process group, and keeps
        # subprocess's fast (vfork) path, which a preexec_fn would lose.
        attempt.process = subprocess.Popen(
            ["/bin/sh", "-c", claim.command],
            cwd=claim.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        attempt.error = f"cannot start: {exc.strerror or exc}" + (
            f": {claim.cwd}" if isinstance(exc, FileNotFoundError | NotADirectoryError | PermissionError) else ""
        )
        attempt.exit_code = None
    return attempt


def signal_group(attempt: Attempt, signum: int) -> None:
    """Signal the attempt's whole process group (the shell and everything it started)."""
    if attempt.pgid is None:
        return
    try:
        os.killpg(attempt.pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def terminate(attempt: Attempt, now: float, error: str | None) -> None:
    """SIGTERM the group now, SIGKILL it after a short grace (or as soon as the shell exits)."""
    if attempt.kill_at is None:
        attempt.kill_at = now + KILL_GRACE_S
        if error is not None:
            attempt.error = error
        signal_group(attempt, signal.SIGTERM)


def tail(attempt: Attempt, limit: int) -> bytes:
    """The last `limit` bytes the command wrote."""
    fd = attempt.output.fileno()  # type: ignore[attr-defined]
    size = os.fstat(fd).st_size
    if size == 0 or limit <= 0:
        return b""
    start_at = max(0, size - limit)
    return os.pread(fd, size - start_at, start_at)


def output_size(attempt: Attempt) -> int:
    return os.fstat(attempt.output.fileno()).st_size  # type: ignore[attr-defined]


def close(attempt: Attempt) -> None:
    attempt.output.close()  # type: ignore[attr-defined]
