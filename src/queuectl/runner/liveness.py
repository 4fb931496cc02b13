"""Who this runner is (host, pid, process start), and the one rule that decides a runner is dead.

A pid alone can be reused; the process start time (with the boot id) cannot, so a runner whose
pid now belongs to another process is recognised as gone. A pid means something only inside
its PID namespace: a runner in another container with the same host name is judged by its
heartbeat alone.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from queuectl.runner.tree import kill_attempts, stat_fields

if TYPE_CHECKING:
    from queuectl.store import Runner, Store

#: A runner whose heartbeat is older than this many leases is dead, wherever it runs. It beats
#: every third of a lease, so this is six missed beats; its jobs' leases have expired by then.
STALE_LEASES = 2


@cache
def host_name() -> str:
    """This host's identity; `QUEUECTL_HOSTNAME` overrides it (tests of several hosts). The
    kernel's node name is what gethostname answers, without importing `socket` into every
    `enqueue` that looks for a live runner."""
    return os.environ.get("QUEUECTL_HOSTNAME") or os.uname().nodename


@cache
def _pid_space() -> str:
    """This boot and PID namespace: where a pid names one process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as handle:
            boot = handle.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def process_started(pid: int) -> str | None:
    """An identity of the process's start (boot, PID namespace, start tick), or None."""
    fields = stat_fields(pid)
    return None if fields is None else f"{_pid_space()}:{fields[19].decode()}"


def is_dead(runner: Runner, now_ms: int, lease_s: float) -> bool:
    """Whether `runner` is gone.

    On this host and in this PID namespace the process itself answers: gone or replaced is
    dead, running is alive whatever its heartbeat says (the wall clock may have jumped), and
    only a stopped one (SIGSTOP, Ctrl-Z) is judged by its heartbeat. Anywhere else, a runner
    silent for STALE_LEASES leases is dead.
    """
    if not is_local(runner):
        return now_ms - runner.heartbeat_at_ms > STALE_LEASES * lease_s * 1000
    return _gone_or_stopped(runner, now_ms, STALE_LEASES * lease_s)


def kill_leftovers(store: Store, runners: list[Runner], now_ms: int, lease_s: float) -> int:
    """SIGKILL the jobs' processes of those `runners` of this host that are dead, or frozen
    past their lease, and wait for them to die; how many processes. Called before their jobs
    are recovered: a dead runner's watchdog kills them too, but in its own time, and a frozen
    runner's jobs run on; a job must not run again, nor free its slot or lock, while they do."""
    # Stopped for one lease, not the two that make it dead: its jobs' leases have run out, so
    # they are about to be run elsewhere.
    gone = [r for r in runners if is_local(r) and _gone_or_stopped(r, now_ms, lease_s)]
    left = {(r.id, job_id, token) for r in gone for job_id, token in store.owned_jobs(r.id).items()}
    return kill_attempts(left) if left else 0


def live_local(runners: list[Runner], now_ms: int, lease_s: float) -> list[str]:
    """The ids of those `runners` of this host that are alive: their expired leases are never
    recovered. Their processes answer, not their leases: a wall-clock step or a store outage
    longer than the lease leaves a healthy runner's leases expired until its next heartbeat,
    and its jobs run on meanwhile. A runner stopped past its lease is not among them: its
    jobs are killed (kill_leftovers) before they are recovered."""
    return [r.id for r in runners if is_local(r) and not _gone_or_stopped(r, now_ms, lease_s)]


def _gone_or_stopped(runner: Runner, now_ms: int, silent_s: float) -> bool:
    """Whether a runner of this host is gone, or stopped (SIGSTOP, Ctrl-Z) with no heartbeat
    for `silent_s`. Running, it is alive whatever its heartbeat says (the clock may jump)."""
    if not is_alive(runner.pid, runner.pid_started):
        return True
    return now_ms - runner.heartbeat_at_ms > silent_s * 1000 and _stopped(runner.pid)


def is_local(runner: Runner) -> bool:
    """Whether `runner` runs on this host and in this PID namespace: its pid is one here."""
    return runner.host == host_name() and _same_pid_space(runner.pid_started)


def _same_pid_space(pid_started: str | None) -> bool:
    if pid_started is None:
        return True  # an older record: it said nothing, as on a host without /proc
    space, _, _ = pid_started.rpartition(":")
    return space == _pid_space()


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


def _stopped(pid: int) -> bool:
    """Whether `pid` is stopped (SIGSTOP, a terminal's Ctrl-Z, a debugger)."""
    return _state(pid) in (b"T", b"t")


def _exited(pid: int) -> bool:
    """Whether `pid` is a zombie: exited, its status not yet collected by its parent."""
    return _state(pid) in (b"Z", b"X")


def _state(pid: int) -> bytes:
    """The one-letter state of `pid` in /proc (b"" where unknown)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return b""
    return data[data.rindex(b")") + 2 :][:1]
