"""A job's memory, CPU and process limits on cgroups made for it alone (v2 where the controller
can be had, else v1), and what each attempt cost (those cgroups' counts, or `wait4`'s).
"""

from __future__ import annotations

import contextlib
import os
import resource
import shlex
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from queuectl.models import LIMITS
from queuectl.usage import size_name

if TYPE_CHECKING:
    from queuectl.runner.tree import Tree
    from queuectl.store import Claim

NAMES = LIMITS
CONTROLLERS = {"memory": "memory", "cpus": "cpu", "max_procs": "pids"}
CPU_PERIOD_US = 100_000
MIN_QUOTA_US = 1_000  # the kernel refuses a smaller quota
EMPTY_WAIT_S = 2.0  # how long a stopping runner waits for a limited job's cgroups to empty
CANNOT_ENTER = 125  # the shell's exit code when it could not enter its limits' cgroups
# What proves each v1 controller can limit: the file its limit is written to.
V1_FILES = {"memory": "memory.limit_in_bytes", "cpu": "cpu.cfs_quota_us", "pids": "pids.max"}


# A runner enforces a limit only where it can give a job a cgroup with that limit's controller:
# cgroup v2 where the controller can be enabled beneath the runner (the job's own cgroup from
# `tree.CgroupTree` takes `memory.max`, `cpu.max`, `pids.max`), otherwise a cgroup v1 hierarchy
# of that controller (a hybrid host), where the job's shell moves itself before it runs the
# command, as the tree's prologue does. A job without limits touches none of this. A cgroup
# that held a job's limits serves no other job: a later one can never inherit a limit, an OOM
# count or a peak.


@dataclass(frozen=True)
class Limits:
    """What one attempt may use; None: unlimited."""

    memory: int | None = None  # bytes
    cpus: float | None = None
    max_procs: int | None = None

    def names(self) -> list[str]:
        """The limits set, by name."""
        return [name for name in NAMES if getattr(self, name) is not None]

    def __bool__(self) -> bool:
        return self.memory is not None or self.cpus is not None or self.max_procs is not None


def limits_of(claim: Claim) -> Limits:
    """The limits a claimed job runs under (its own, or its queue's defaults)."""
    return Limits(claim.memory, claim.cpus, claim.max_procs)


def oom_error(memory: int | None) -> str:
    """The error of an attempt that the kernel's OOM killer ended."""
    if memory is None:
        return "out of memory"
    return f"out of memory (limit {size_name(memory)})"


def from_rusage(usage: Any) -> tuple[int, int]:
    """(cpu_ms, max_rss_bytes) from a resource.struct_rusage (ru_maxrss is in KiB on Linux)."""
    return round((usage.ru_utime + usage.ru_stime) * 1000), usage.ru_maxrss * 1024


_runner_peak = 0  # bytes: this process's peak resident size, as last read


def own_peak(max_rss_bytes: int | None) -> int | None:
    """A shell's peak as `wait4` reports it, or None if it may be the runner's own.

    The shell is spawned sharing the runner's memory until its exec (vfork-style), and the
    kernel keeps the larger of that memory's peak and the shell's: a job whose processes
    stayed smaller than the runner reports the runner's size. The runner's peak only grows;
    it is read again only when a job seems to have outgrown it.
    """
    global _runner_peak
    if max_rss_bytes is None:
        return None
    if max_rss_bytes > _runner_peak:
        _runner_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return max_rss_bytes if max_rss_bytes > _runner_peak else None


@dataclass
class JobCgroups:
    """The cgroups made for one limited attempt."""

    limits: Limits
    v2: str | None = None  # its cgroup v2 (the tree's): limits, cpu.stat, memory.peak
    v2_memory: bool = False  # whether that cgroup has the memory controller, and is its own
    cpu_base_usec: int = 0  # its cpu.stat's usage as it started (a cgroup used before)
    v1: dict[str, str] = field(default_factory=dict)  # controller: its cgroup v1 directory
    prologue: str = ""  # shell text that moves the shell into its v1 cgroups
    serial: int = 0  # names its v1 cgroups

    def usage(self) -> tuple[int | None, int | None, bool]:
        """(cpu_ms, peak memory in bytes, whether the OOM killer killed one of its processes),
        each None where no cgroup of this attempt counts it."""
        cpu_ms = peak = None
        oom = False
        if self.v2 is not None:
            usage_usec = _cpu_usec(self.v2)
            if usage_usec is not None:
                cpu_ms = round((usage_usec - self.cpu_base_usec) / 1000)
            if self.v2_memory:
                peak = _number(f"{self.v2}/memory.peak")
                oom = _keyed(f"{self.v2}/memory.events").get("oom_kill", 0) > 0
        memory = self.v1.get("memory")
        if memory is not None:
            peak = _number(f"{memory}/memory.max_usage_in_bytes")
            oom = oom or _keyed(f"{memory}/memory.oom_control").get("oom_kill", 0) > 0
        if cpu_ms is None and "cpuacct" in self.v1:
            usage_ns = _number(f"{self.v1['cpuacct']}/cpuacct.usage")
            cpu_ms = None if usage_ns is None else round(usage_ns / 1_000_000)
        return cpu_ms, peak, oom


class Limiter:
    """Enforces no limit (no cgroups, another system, or QUEUECTL_NO_CGROUP=1)."""

    def __init__(self) -> None:
        self.v2: str | None = None  # the runner's cgroup v2 for jobs, with the controllers below
        self.v2_names: set[str] = set()  # limits its job cgroups take
        self.v1: dict[str, str] = {}  # controller: this runner's cgroup v1 for jobs
        self.serial = 0
        self.pending: list[str] = []  # v1 cgroups of ended attempts, to remove once empty

    @property
    def enforces(self) -> list[str]:
        """The limits this runner enforces, in NAMES order."""
        v1 = {name for name, controller in CONTROLLERS.items() if controller in self.v1}
        return [name for name in NAMES if name in self.v2_names or name in v1]

    def apply(self, limits: Limits, tree: Tree, job: int) -> JobCgroups:
        """Cgroups with these limits for the attempt `job` of `tree`, about to start. OSError if
        a limit cannot be set."""
        self._remove_pending()
        missing = [name for name in limits.names() if name not in self.enforces]
        if missing:
            raise OSError(f"this runner cannot enforce {', '.join(missing)}")
        self.serial += 1
        # Its cgroup v2 is made for it alone only if it holds limits: else it has been used
        # before, and its CPU is counted from where it stands now.
        on_v2 = any(name in self.v2_names for name in limits.names())
        v2 = tree.cgroup(job, fresh=on_v2)
        cgroups = JobCgroups(limits, v2, on_v2 and "memory" in self.v2_names, serial=self.serial)
        if v2 is not None and not on_v2:
            cgroups.cpu_base_usec = _cpu_usec(v2) or 0
        try:
            for name in limits.names():
                if v2 is not None and name in self.v2_names:
                    _set_v2(v2, name, limits)
                else:
                    _set_v1(self._v1_cgroup(cgroups, CONTROLLERS[name]), name, limits)
            if v2 is None and "cpuacct" in self.v1:
                self._v1_cgroup(cgroups, "cpuacct")  # the only count of its orphans' CPU
        except OSError:
            self.release(cgroups)
            raise
        if cgroups.v1:
            moves = " && ".join(
                f"echo 0 >{shlex.quote(path + '/cgroup.procs')}"
                for path in dict.fromkeys(cgroups.v1.values())
            )
            cgroups.prologue = (
                f"{{ {moves}; }} 2>/dev/null || "
                f"{{ echo 'queuectl: cannot enter the cgroups of the job limits' >&2; "
                f"exit {CANNOT_ENTER}; }}; "
            )
        return cgroups

    def _v1_cgroup(self, cgroups: JobCgroups, controller: str) -> str:
        path = cgroups.v1.get(controller)
        if path is None:
            path = f"{self.v1[controller]}/job-{cgroups.serial}"
            if path not in cgroups.v1.values():  # controllers mounted together share it
                os.mkdir(path)
            cgroups.v1[controller] = path
        return path

    def release(self, cgroups: JobCgroups) -> None:
        """The attempt has ended (its processes killed): remove its v1 cgroups. Its v2 cgroup
        is the tree's, which never gives it to another job."""
        for path in dict.fromkeys(cgroups.v1.values()):
            if not remove_empty(path):
                _kill_v1(path)
                if not remove_empty(path):
                    self.pending.append(path)
        cgroups.v1 = {}

    def _remove_pending(self) -> None:
        if self.pending:
            self.pending = [path for path in self.pending if not remove_empty(path)]

    def close(self) -> None:
        """The runner stops: remove what it made, once the killed processes are gone."""
        give_up = time.monotonic() + EMPTY_WAIT_S
        while True:
            for path in self.pending:
                _kill_v1(path)
            self._remove_pending()
            if not self.pending or time.monotonic() >= give_up:
                break
            time.sleep(0.01)
        for base in dict.fromkeys(self.v1.values()):
            remove_empty(base)


def make(v2: str | None) -> Limiter:
    """What this runner can enforce: `v2` is the cgroup v2 its jobs' cgroups are made in
    (None if they have none). Any controller not found there is looked for in cgroup v1."""
    limiter = Limiter()
    name = f"queuectl-{os.getpid()}-{os.urandom(3).hex()}"
    if v2 is not None:
        limiter.v2 = v2
        limiter.v2_names = _enable_v2(v2)
    wanted = {CONTROLLERS[limit] for limit in NAMES if limit not in limiter.v2_names}
    if not wanted:
        return limiter
    places = _v1_places()
    if not (wanted & set(places)):
        return limiter
    if v2 is None:
        wanted.add("cpuacct")
    for controller in sorted(wanted):
        place = places.get(controller)
        if place is None:
            continue
        base = f"{place}/{name}"
        if base in limiter.v1.values():  # controllers mounted together: one hierarchy
            limiter.v1[controller] = base
            continue
        _remove_stale(place)
        if _probe_v1(base, controller):
            limiter.v1[controller] = base
    return limiter


# -- cgroup v2


def _enable_v2(base: str) -> set[str]:
    """The limits whose controllers job cgroups beneath `base` can have, enabled on the way.

    A cgroup with processes in it cannot give its children a controller (except the root):
    where the runner's own cgroup holds only the runner and its own children (a systemd unit
    with Delegate=yes), they move to a leaf of their own first, as systemd asks of a delegate.
    """
    own = os.path.dirname(base)
    wanted = set(CONTROLLERS.values())
    try:
        available = set(_read(f"{own}/cgroup.controllers").split()) & wanted
        missing = available - set(_read(f"{own}/cgroup.subtree_control").split())
    except OSError:
        return set()
    if (
        missing
        and not _subtree(own, missing)
        and not (_vacate(own, f"{base}-runner") and _subtree(own, missing))
    ):
        available -= missing
    if not available or not _subtree(base, available):
        return set()
    try:
        enabled = set(_read(f"{base}/cgroup.subtree_control").split())
    except OSError:
        return set()
    return {name for name, controller in CONTROLLERS.items() if controller in enabled}


def _subtree(cgroup: str, controllers: set[str]) -> bool:
    try:
        write_file(
            f"{cgroup}/cgroup.subtree_control", " ".join(f"+{c}" for c in sorted(controllers))
        )
    except OSError:
        return False
    return True


def _vacate(own: str, leaf: str) -> bool:
    """Move the processes of `own` into `leaf` if they are only this runner and its children."""
    me = os.getpid()
    try:
        pids = [int(word) for word in _read(f"{own}/cgroup.procs").split()]
    except OSError:
        return False
    if any(pid != me and _parent(pid) != me for pid in pids):
        return False
    try:
        os.mkdir(leaf)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                write_file(f"{leaf}/cgroup.procs", str(pid))
    except OSError:
        return False
    return True


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2 :].split()[1])


def _set_v2(path: str, name: str, limits: Limits) -> None:
    if name == "memory":
        write_file(f"{path}/memory.max", str(limits.memory))
        with contextlib.suppress(FileNotFoundError):  # no swap accounting: no swap to limit
            write_file(f"{path}/memory.swap.max", "0")
        # The OOM killer ends the whole attempt, not one of its processes at random.
        with contextlib.suppress(FileNotFoundError):
            write_file(f"{path}/memory.oom.group", "1")
    elif name == "cpus":
        write_file(f"{path}/cpu.max", f"{_quota(limits.cpus)} {CPU_PERIOD_US}")
    else:
        write_file(f"{path}/pids.max", str(limits.max_procs))


# -- cgroup v1


def _v1_places() -> dict[str, str]:
    """controller: this process's cgroup directory in that controller's v1 hierarchy."""
    try:
        with open("/proc/self/cgroup") as handle:
            lines = [line.rstrip("\n").split(":", 2) for line in handle]
        with open("/proc/self/mountinfo") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return {}
    paths = {
        controller: path
        for _, controllers, path in (parts for parts in lines if len(parts) == 3)
        for controller in controllers.split(",")
        if controller
    }
    found: dict[str, str] = {}
    for fields in mounts:
        dash = fields.index("-")
        if fields[dash + 1] != "cgroup":
            continue
        root, point = fields[3], fields[4]
        for controller in fields[dash + 3].split(","):
            path = paths.get(controller)
            if path is None or controller in found:
                continue
            if path == root or path.startswith(root.rstrip("/") + "/"):
                found[controller] = (point + path[len(root.rstrip("/")) :]).rstrip("/")
    return found


def _probe_v1(base: str, controller: str) -> bool:
    """Make this runner's cgroup in a v1 hierarchy, if a job cgroup beneath it takes a limit."""
    try:
        os.mkdir(base)
    except OSError:
        return False
    probe = f"{base}/probe"
    try:
        os.mkdir(probe)
        if controller in V1_FILES:
            limit_file = f"{probe}/{V1_FILES[controller]}"
            write_file(limit_file, _read(limit_file).strip())
        elif not os.path.exists(f"{probe}/cpuacct.usage"):
            raise OSError("no cpuacct.usage")
    except OSError:
        remove_empty(probe)
        remove_empty(base)
        return False
    remove_empty(probe)
    return True


def _set_v1(path: str, name: str, limits: Limits) -> None:
    if name == "memory":
        write_file(f"{path}/memory.limit_in_bytes", str(limits.memory))
        with contextlib.suppress(FileNotFoundError):  # no swap accounting: no swap to limit
            write_file(f"{path}/memory.memsw.limit_in_bytes", str(limits.memory))
    elif name == "cpus":
        write_file(f"{path}/cpu.cfs_period_us", str(CPU_PERIOD_US))
        write_file(f"{path}/cpu.cfs_quota_us", str(_quota(limits.cpus)))
    else:
        write_file(f"{path}/pids.max", str(limits.max_procs))


def _kill_v1(path: str) -> None:
    """SIGKILL what is left in a v1 cgroup (v1 has no cgroup.kill)."""
    try:
        pids = [int(word) for word in _read(f"{path}/cgroup.procs").split()]
    except OSError:
        return
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _remove_stale(place: str) -> None:
    """Remove what runners that are gone left in a v1 hierarchy (those cgroups empty)."""
    try:
        names = os.listdir(place)
    except OSError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) != 3 or parts[0] != "queuectl" or not parts[1].isdigit():
            continue
        if os.path.exists(f"/proc/{parts[1]}"):
            continue
        remove_cgroup(f"{place}/{name}")


# -- files


def _quota(cpus: float | None) -> int:
    return max(MIN_QUOTA_US, round((cpus or 0) * CPU_PERIOD_US))


def write_file(path: str, text: str) -> None:
    """Write `text` into a cgroup file (one write, no creating, no buffering)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 65536).decode()
    finally:
        os.close(fd)


def _cpu_usec(cgroup: str) -> int | None:
    """The CPU time of a cgroup v2 (its cpu.stat is there without the cpu controller)."""
    return _keyed(f"{cgroup}/cpu.stat").get("usage_usec")


def _number(path: str) -> int | None:
    try:
        return int(_read(path).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _keyed(path: str) -> dict[str, int]:
    """A `key value` per line file (cpu.stat, memory.events, memory.oom_control)."""
    try:
        text = _read(path)
    except OSError:
        return {}
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[key] = int(value)
    return found


def remove_empty(path: str) -> bool:
    """Remove an empty cgroup; False while processes remain in it."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def remove_cgroup(base: str) -> None:
    """Remove `base` and the cgroups beneath it (those that are empty)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(base):
            if os.path.isdir(f"{base}/{name}"):
                remove_empty(f"{base}/{name}")
    remove_empty(base)
