"""One attempt of one job: `/bin/sh -c COMMAND` in its own session, output kept in an unnamed file.

The command writes to a pipe that the runner's loop empties into an unnamed file (a memfd on
Linux, moved by splice without copying through Python), punching out what lies before the kept
tail as it goes. The pipe makes a fast writer wait for the runner instead of filling memory:
what is held per job stays within the tail, the slack and the pipe's buffer, however fast it
writes. The loop never waits for the pipe's end, so a grandchild that keeps it open hangs nothing.

Spawning uses clone3 as posix_spawn would (a vfork-style clone, in the `_spawn` extension
compiled at install, Linux), with the shell born in the job's cgroup where it has one; else
os.posix_spawn, with the cgroup's prologue. Either is much cheaper than subprocess.Popen,
and the runner's single loop spawns every job.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from queuectl.runner.limits import JobCgroups, from_rusage, limits_of, oom_error, own_peak
from queuectl.runner.tree import Tree
from queuectl.store import Claim

KILL_GRACE_S = 1.0
PIPE_BYTES = 256 << 10  # the pipe's buffer: fewer wakeups of the runner for a chatty job
MOVE_BYTES = 128 << 10  # moved by one splice; the file is trimmed before it would pass its bound
PUMP_MAX = 8 << 20  # bytes moved per wakeup at most, so one job cannot hold up the loop
TRIM_SLACK = 1 << 20  # output beyond output_limit that may pile up before it is freed
SHELL = "/bin/sh"
# Python ignores these; a command must start with them at their defaults, as from a shell.
DEFAULT_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)
_DEVNULL: int | None = None
#: "1": spawn with posix_spawn (and the cgroup's prologue) even where clone3 is there.
NO_CLONE3_ENV = "QUEUECTL_NO_CLONE3"
# clone3, or its cgroup field, refused by this system (an older kernel, a seccomp filter): the
# runner spawns with posix_spawn from then on.
UNSUPPORTED = (errno.ENOSYS, errno.E2BIG, errno.EINVAL, errno.EPERM)


@dataclass
class Attempt:
    """A running attempt of a job, and what the runner knows about it."""

    claim: Claim
    pid: int | None  # also its process group: each command leads a session of its own
    output: BinaryIO | None  # the unnamed file the command writes to (None: none was made)
    started_at_ms: int
    started_mono: float
    deadline: float | None  # monotonic instant of its timeout
    timeout_s: float | None
    kill_at: float | None = None  # monotonic instant of the SIGKILL that follows a SIGTERM
    error: str | None = None  # why it was killed (timeout), or why it could not start
    abandoned: bool = False  # cancelled or no longer ours: its result is not written
    released: bool = False  # stopped by shutdown: given back without using an attempt
    synced_size: int = 0  # output bytes already copied to the store for `logs --follow`
    trimmed: int = 0  # output bytes before this offset are freed (see trim)
    exit_code: int | None = field(default=None)
    pipe: int | None = None  # the read end of the command's stdout and stderr, until its end
    tree: Tree = field(default_factory=Tree)  # its processes outside its group (Linux)
    job: int = 0  # its handle in `tree`
    slot: int = -1  # the index of the worker slot it holds (see Slots)
    cpu_ms: int | None = None  # what it cost, once ended (see end)
    max_rss_bytes: int | None = None
    cgroups: JobCgroups | None = None  # those made for its limits, if it has any
    silence_s: float | None = None  # killed after this long without output (None: never)
    last_output: float = 0.0  # monotonic instant of its last output (or of its start)
    progress_file: str | None = None  # where the command may write progress reports
    progress_seen: tuple[int, int] = (0, 0)  # that file's (size, mtime) as last read

    @property
    def pgid(self) -> int | None:
        return self.pid

    def poll(self) -> bool:
        """Whether the command has ended (reaping it, and recording its exit code)."""
        if self.pid is None:
            return True
        try:
            pid, status, usage = os.wait4(self.pid, os.WNOHANG)
        except ChildProcessError:
            return True
        if pid == 0:
            return False
        self.cpu_ms, self.max_rss_bytes = from_rusage(usage)
        code = os.waitstatus_to_exitcode(status)
        self.exit_code = code if code >= 0 else 128 - code  # killed by signal N: 128 + N
        return True


def start(
    claim: Claim,
    base_env: dict[str, str],
    default_timeout_s: float,
    tree: Tree | None = None,
    slot: int = -1,
    progress_dir: str | None = None,
) -> Attempt:
    """Spawn the command on worker slot `slot`. A command that cannot start is an attempt
    that failed at once."""
    env = {**base_env, **claim.env}
    env["QUEUECTL_JOB_ID"] = claim.id
    env["QUEUECTL_ATTEMPT"] = str(claim.attempt)
    # Attempt numbers start again at a requeue; a claim's token never repeats, so it alone
    # tells this attempt's processes from a later attempt's.
    env["QUEUECTL_CLAIM_TOKEN"] = str(claim.token)
    env["QUEUECTL_SLOT"] = str(slot)
    if progress_dir is not None:
        env["QUEUECTL_PROGRESS_FILE"] = os.path.join(progress_dir, f"{claim.id}.{claim.token}")
    timeout_s = (default_timeout_s or None) if claim.timeout is None else (claim.timeout or None)
    try:
        output: BinaryIO | None = _output_file()
    except OSError as exc:  # out of descriptors or memory: this job fails, the runner lives on
        output, failed = None, f"cannot start: {exc.strerror or exc}"
    started_at_ms = time.time_ns() // 1_000_000
    mono = time.monotonic()
    attempt = Attempt(
        claim,
        None,
        output,
        started_at_ms,
        mono,
        None if timeout_s is None else mono + timeout_s,
        timeout_s,
        slot=slot,
    )
    if claim.silence_timeout is not None:
        attempt.silence_s, attempt.last_output = claim.silence_timeout, mono
    if progress_dir is not None:
        attempt.progress_file = env["QUEUECTL_PROGRESS_FILE"]
    if output is None:
        attempt.error = failed
        return attempt
    if tree is not None:
        attempt.tree = tree
        attempt.job = tree.new_job(claim.id, claim.token)
    limits = limits_of(claim)
    if limits:
        try:
            attempt.cgroups = attempt.tree.limiter.apply(limits, attempt.tree, attempt.job)
        except OSError as exc:
            attempt.error = f"cannot start: cannot set the job's limits: {exc.strerror or exc}"
            return attempt
    global _DEVNULL
    try:
        if _DEVNULL is None:
            _DEVNULL = os.open(os.devnull, os.O_RDONLY)
        pipe_r, out = os.pipe2(os.O_CLOEXEC) if hasattr(os, "pipe2") else os.pipe()
    except OSError as exc:
        attempt.error = f"cannot start: {exc.strerror or exc}"
        return attempt
    if hasattr(fcntl, "F_SETPIPE_SZ"):
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size: keep the default
            fcntl.fcntl(pipe_r, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    os.set_blocking(pipe_r, False)
    attempt.pipe = pipe_r
    try:
        # The runner's loop is single-threaded, so changing its directory for the spawn is safe;
        # neither spawn has a chdir of its own.
        os.chdir(claim.cwd)
        attempt.pid = _spawn(attempt, env, _DEVNULL, out)
        attempt.tree.started(attempt.job, attempt.pid)
    except OSError as exc:
        where = f": {claim.cwd}" if exc.filename else ""
        attempt.error = f"cannot start: {exc.strerror or exc}{where}"
        close_pipe(attempt)
    finally:
        os.close(out)  # the command holds its own copies
    return attempt


def _spawn(attempt: Attempt, env: dict[str, str], stdin: int, out: int) -> int:
    """Start the attempt's shell, in its own session and process group (killed as a whole)."""
    global _clone
    tree, job, command = attempt.tree, attempt.job, attempt.claim.command
    if attempt.cgroups is not None:
        command = attempt.cgroups.prologue + command
    renewed = False
    while _clone is not None:
        try:
            return _clone(
                SHELL,
                [SHELL, "-c", command],
                [f"{name}={value}" for name, value in env.items()],
                stdin,
                out,
                out,
                tree.birthplace(job),
                DEFAULT_SIGNALS,
            )
        except OSError as exc:
            if exc.filename is not None:  # the exec failed: posix_spawn would fail alike
                raise
            if exc.errno in UNSUPPORTED:
                _clone = None
            elif exc.errno == errno.ENOENT and not renewed and tree.renew(job):
                renewed = True  # its cgroup was removed: once more, in a new one
            else:
                break  # posix_spawn says what is wrong (no process left, no memory)
    return os.posix_spawn(
        SHELL,
        # The prologue shares the command's first line, so its line numbers are unchanged.
        [SHELL, "-c", tree.prologue(job) + command],
        env,
        file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin, 0),
            (os.POSIX_SPAWN_DUP2, out, 1),
            (os.POSIX_SPAWN_DUP2, out, 2),
        ],
        setsid=True,
        setsigdef=DEFAULT_SIGNALS,
    )


def probe(tree: Tree) -> None:
    """Spawn a shell that does nothing where jobs will be born: if the system kills it (a
    cgroup mark of some kernels, see CgroupTree) or refuses clone3, jobs are spawned with
    posix_spawn and the cgroup's prologue."""
    global _clone
    if _clone is None or tree.kind != "cgroup":
        return
    job = tree.new_job("probe", 0)
    place = tree.birthplace(job)
    if place >= 0:
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            pid = _clone(SHELL, [SHELL, "-c", ":"], [], null, null, null, place, ())
            if os.waitpid(pid, 0)[1] != 0:
                _clone = None
        except OSError:
            _clone = None
        finally:
            os.close(null)
    tree.ended(job)


def pump(attempt: Attempt, keep: int, slack: int) -> bool:
    """Move what the command wrote from its pipe to the output file, freeing all but the last
    `keep` bytes once `slack` more have piled up. False once the pipe has ended."""
    if attempt.pipe is None or attempt.output is None:
        return False
    out = attempt.output.fileno()
    moved = 0
    while moved < PUMP_MAX:
        if output_size(attempt) - attempt.trimmed + MOVE_BYTES > keep + slack:
            trim(attempt, keep)
        try:
            if _splice is not None:
                count = _splice(attempt.pipe, out, MOVE_BYTES)
            else:
                count = os.write(out, os.read(attempt.pipe, MOVE_BYTES))
        except BlockingIOError:
            return True
        if count == 0:
            return False
        if moved == 0 and attempt.silence_s is not None:
            attempt.last_output = time.monotonic()
        moved += count
    return True


def close_pipe(attempt: Attempt) -> None:
    """Stop reading the command's output (a later write there fails with EPIPE)."""
    if attempt.pipe is not None:
        os.close(attempt.pipe)
        attempt.pipe = None


def _output_file() -> BinaryIO:
    """An unnamed file for the command's output: in memory on Linux (memfd), else on disk.

    A memfd is much cheaper to make than a temporary file on disk; `trim` keeps its memory
    bounded by punching out what lies before the kept tail.
    """
    if hasattr(os, "memfd_create"):
        return open(os.memfd_create("queuectl-output", os.MFD_CLOEXEC), "w+b", buffering=0)
    return tempfile.TemporaryFile(buffering=0)


def trim(attempt: Attempt, keep: int) -> None:
    """Free the output's memory before its last `keep` bytes (Linux); its size stays."""
    if _fallocate is None or attempt.output is None:
        return
    fd = attempt.output.fileno()
    end = os.fstat(fd).st_size - keep
    end -= end % 4096
    if end > attempt.trimmed:
        _fallocate(fd, PUNCH_HOLE_KEEP_SIZE, 0, end)
        attempt.trimmed = end


def _load_fallocate() -> object:
    try:
        import ctypes
        import ctypes.util

        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        function = libc.fallocate
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
        return function
    except (OSError, AttributeError):
        return None


def _load_clone() -> Callable[..., int] | None:
    if os.environ.get(NO_CLONE3_ENV) == "1":
        return None
    try:
        from queuectl.runner._spawn import spawn
    except ImportError:  # not compiled (no compiler at install, another system)
        return None
    return spawn


_clone = _load_clone()
_splice = getattr(os, "splice", None)  # Linux: pipe to file inside the kernel
PUNCH_HOLE_KEEP_SIZE = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
_fallocate: Any = _load_fallocate() if hasattr(os, "memfd_create") else None


def signal_group(attempt: Attempt, signum: int) -> None:
    """Signal the attempt's whole process group, and what it started outside it (Linux)."""
    if attempt.pgid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(attempt.pgid, signum)
    attempt.tree.signal(attempt.job, signum)


def end(attempt: Attempt) -> None:
    """The shell has exited and been reaped: every process it started dies with it."""
    if attempt.pgid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(attempt.pgid, signal.SIGKILL)
    cgroups = attempt.cgroups
    counted = cgroups.usage() if cgroups is not None else (None, None, False)
    orphans = attempt.tree.ended(attempt.job)
    attempt.max_rss_bytes = own_peak(attempt.max_rss_bytes)
    if orphans is not None and attempt.cpu_ms is not None:
        attempt.cpu_ms += round(orphans[0] * 1000)
        attempt.max_rss_bytes = max(attempt.max_rss_bytes or 0, orphans[1] * 1024)
    if cgroups is not None:
        # The cgroups count every process the attempt started, reaped by the runner or not.
        attempt.cpu_ms = counted[0] if counted[0] is not None else attempt.cpu_ms
        attempt.max_rss_bytes = counted[1] if counted[1] is not None else attempt.max_rss_bytes
        if counted[2] and attempt.error is None:
            attempt.error = oom_error(cgroups.limits.memory)
        attempt.tree.limiter.release(cgroups)


def terminate(attempt: Attempt, now: float, error: str | None) -> None:
    """SIGTERM the group now, SIGKILL it after a short grace (or as soon as the shell exits)."""
    if attempt.kill_at is None:
        attempt.kill_at = now + KILL_GRACE_S
        if error is not None:
            attempt.error = error
        signal_group(attempt, signal.SIGTERM)


def tail(attempt: Attempt, limit: int) -> bytes:
    """The last `limit` bytes the command wrote."""
    if attempt.output is None:
        return b""
    fd = attempt.output.fileno()
    size = os.fstat(fd).st_size
    if size == 0 or limit <= 0:
        return b""
    start_at = max(0, size - limit)
    return os.pread(fd, size - start_at, start_at)


def output_size(attempt: Attempt) -> int:
    return 0 if attempt.output is None else os.fstat(attempt.output.fileno()).st_size


def close(attempt: Attempt) -> None:
    close_pipe(attempt)
    if attempt.output is not None:
        attempt.output.close()
