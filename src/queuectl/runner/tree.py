"""Every process a job started, also those that left its process group or session (Linux).

Chosen once per runner. Where cgroup v2 is writable (delegated), each job runs in a cgroup of
its own beneath one for the runner, and is killed as a whole through `cgroup.kill`: exact, as
nothing born in a cgroup can leave it unprivileged. Otherwise the runner is a child subreaper
(orphans re-parent to it, not to init) and follows each job's descendants through /proc. On
other systems only the job's process group is known.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import signal
import sys
import time
from dataclasses import dataclass, field

from queuectl.runner import limits
from queuectl.runner.limits import Limiter

PR_SET_CHILD_SUBREAPER = 36
SCAN_AFTER_S = 0.05  # a job this young is not looked at: a drain of short jobs costs no walk
SCAN_EVERY_S = 0.2  # how often a running job's descendants are looked for
DYING_SCAN_S = 0.05  # how often an ended job's remaining processes are looked for again
SLOW_DYING_SCAN_S = 1.0  # the same, once they have outlived EMPTY_WAIT_S
EMPTY_WAIT_S = 2.0  # how long a stopping runner waits for its killed cgroups to empty
#: The variable that names, in a job's environment, the runner that started it.
RUNNER_ENV = "QUEUECTL_RUNNER_ID"
RUNNER_ENV_PREFIX = f"{RUNNER_ENV}=".encode()
ENDED_KEPT = 1000  # ended attempts remembered, to recognise their late orphans by environment
ENDED_CGROUPS_KEPT = 32  # ended jobs' empty cgroups kept for reuse (slots need fewer)
NO_CGROUP_ENV = "QUEUECTL_NO_CGROUP"  # "1": the subreaper even where cgroups are writable


class Tree:
    """No more than the process group (systems without /proc): every method does nothing."""

    kind = "process group"

    def __init__(self) -> None:
        self.watch: list[str] = []  # lines for the watchdog, taken by the supervisor
        self._serial = 0
        self.limiter = Limiter()  # the limits this runner's jobs can be held to (open_tree)

    def new_job(self, job_id: str, token: int) -> int:
        """A handle for an attempt about to start, known by its job and claim token."""
        self._serial += 1
        return self._serial

    def birthplace(self, job: int) -> int:
        """A descriptor of the directory of the cgroup the job's shell is to be born in, or -1:
        the runner's own."""
        return -1

    def renew(self, job: int) -> bool:
        """The job's cgroup is gone: whether another could be made for it."""
        return False

    def cgroup(self, job: int, fresh: bool) -> str | None:
        """The job's cgroup v2, or None; `fresh`: one made for it alone and never given to
        another (to hold its limits, and a peak and counts of its own)."""
        return None

    def prologue(self, job: int) -> str:
        """Shell text run before the job's command, in the same shell, where it could not be
        born in its place: what it starts after that is the job's."""
        return ""

    def started(self, job: int, pid: int) -> None:
        """The job's shell runs as `pid`."""

    def signal(self, job: int, signum: int) -> None:
        """Signal the job's processes outside its process group."""

    def ended(self, job: int) -> tuple[float, int] | None:
        """The job's shell has exited (and been reaped): SIGKILL whatever it left. What the
        orphans of the job reaped meanwhile cost: (CPU seconds, largest peak in KiB), or None."""
        return None

    def poll(self, now: float) -> None:
        """Look for new descendants, reap re-parented orphans, remove emptied cgroups."""

    def next_due(self, now: float) -> float | None:
        """When `poll` next has work to do (None: only when woken)."""
        return None

    def close(self) -> None:
        """The runner stops: kill every job's processes, remove what was made."""


def _in_group(pid: int, group: int | None) -> bool:
    """Whether `pid` belongs to process group `group`: such a process already had the signal
    the group was sent, and a second one (a second TERM) would cut short its handling of it."""
    if group is None:
        return False
    try:
        return os.getpgid(pid) == group
    except OSError:
        return False


# -- cgroup v2


def own_cgroup() -> str | None:
    """This process's cgroup v2 directory, or None without a cgroup v2 hierarchy."""
    return cgroup_of("self")


def cgroup_of(pid: int | str) -> str | None:
    """The cgroup v2 directory of process `pid`, or None (gone, or no cgroup v2 hierarchy)."""
    try:
        with open(f"/proc/{pid}/cgroup") as handle:
            path = next((line[3:].strip() for line in handle if line.startswith("0::")), None)
        with open("/proc/self/mountinfo") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return None
    if path is None:
        return None
    for fields in mounts:
        fstype = fields[fields.index("-") + 1]
        if fstype != "cgroup2":
            continue
        root, point = fields[3], fields[4]
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return point + path[len(root.rstrip("/")) :].rstrip("/")
    return None


def populated(cgroup: str) -> bool:
    try:
        with open(f"{cgroup}/cgroup.events") as handle:
            return "populated 1" in handle.read()
    except OSError:
        return False


class CgroupTree(Tree):
    """A cgroup per job, beneath one for the runner; a job is killed by its `cgroup.kill`.

    The job's shell is born in the job's cgroup (clone3's CLONE_INTO_CGROUP, see executor), so
    nothing the command starts is born outside, and nobody migrates: a move into a cgroup waits
    in the kernel for an RCU grace period unless another move came just before, and moving the
    runner in and out around each spawn held its one loop there. Where the shell cannot be
    born there, it moves itself before it runs the command (a prologue on the same line of its
    script); moving it from the runner after its start would race with its first fork.

    An ended job's cgroup serves a later job if it was left empty, as most are: one read of its
    `cgroup.events`, kept open, where a mkdir, an rmdir and a kill would be. A cgroup that was
    killed is never used again: on some kernels (6.18) `cgroup.kill` leaves a mark that kills
    every process born into that cgroup afterwards. It is removed once it has emptied.
    """

    kind = "cgroup"

    def __init__(self, own: str, base: str) -> None:
        super().__init__()
        self.own = own
        self.base = base
        self.jobs: dict[int, str | None] = {}
        self.shells: dict[int, int] = {}  # job: its shell's pid, which is its process group
        self.spent: list[str] = []  # cgroups of ended jobs, empty and never killed
        self.limited: set[str] = set()  # cgroups of running jobs with limits: never reused
        self.killed: set[str] = set()  # job cgroups that had a cgroup.kill
        self.dying: dict[str, float] = {}  # killed cgroups of ended jobs: when, till removed
        self.next_removal = 0.0
        self.dirs: dict[str, int] = {}  # each cgroup's directory, open for clone3
        self.events: dict[str, int] = {}  # each cgroup's cgroup.events, open
        self.watch.append(f"c{base}")

    @classmethod
    def make(cls) -> CgroupTree | None:
        """One for this runner if cgroup v2 is writable here and has cgroup.kill (5.14+)."""
        own = own_cgroup()
        if own is None:
            return None
        base = f"{own}/queuectl-{os.getpid()}-{os.urandom(3).hex()}"
        try:
            os.mkdir(base)
        except OSError:
            return None
        probe = f"{base}/probe"
        try:
            os.mkdir(probe)
            if not os.path.exists(f"{probe}/cgroup.kill"):
                raise OSError("no cgroup.kill")
            limits.write_file(f"{probe}/cgroup.procs", "0")  # "0": the writer itself
            limits.write_file(f"{own}/cgroup.procs", "0")
        except OSError:
            with contextlib.suppress(OSError):
                limits.write_file(f"{own}/cgroup.procs", "0")
            with contextlib.suppress(OSError):
                os.rmdir(probe)
            with contextlib.suppress(OSError):
                os.rmdir(base)
            return None
        os.rmdir(probe)
        _remove_stale(own)
        return cls(own, base)

    def new_job(self, job_id: str, token: int) -> int:
        serial = super().new_job(job_id, token)
        if self.spent:
            self.jobs[serial] = self.spent.pop(0)
        else:
            self.jobs[serial] = self._make(serial)
        return serial

    def _make(self, serial: int) -> str | None:
        """A new cgroup; None if none can be made (the job is contained by its process group)."""
        path = f"{self.base}/job-{serial}"
        try:
            try:
                os.mkdir(path)
            except FileNotFoundError:  # taken for stale by another runner: made again
                os.mkdir(self.base)
                os.mkdir(path)
        except OSError:
            return None
        return path

    def renew(self, job: int) -> bool:
        # Removed as stale by another runner (one in another PID namespace may take this one
        # for gone while it is idle): so are the other ended jobs' cgroups.
        for path in [self.jobs.get(job), *self.spent]:
            if path is not None:
                self._forget(path)
                self.killed.discard(path)
        self.spent = []
        self.jobs[job] = self._make(job)
        return self.jobs[job] is not None

    def cgroup(self, job: int, fresh: bool) -> str | None:
        path = self.jobs.get(job)
        if fresh and path is not None and os.path.basename(path) != f"job-{job}":
            self.spent.insert(0, path)  # another's before: made anew
            path = self.jobs[job] = self._make(job)
        if fresh and path is not None:
            self.limited.add(path)
        return path

    def birthplace(self, job: int) -> int:
        path = self.jobs.get(job)
        if path is None:
            return -1
        if path not in self.dirs:
            try:
                self.dirs[path] = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                return -1
        return self.dirs[path]

    def prologue(self, job: int) -> str:
        path = self.jobs.get(job)
        if path is None:
            return ""
        # A failed move leaves the job contained by its process group, as when no cgroup
        # could be made; the shell's own message would be noise in the job's output.
        return f"{{ echo 0 >{shlex.quote(path + '/cgroup.procs')}; }} 2>/dev/null; "

    def signal(self, job: int, signum: int) -> None:
        path = self.jobs.get(job)
        if path is None:
            return
        if signum == signal.SIGKILL:
            self._kill(path)
            return
        try:
            with open(f"{path}/cgroup.procs") as handle:
                pids = [int(line) for line in handle]
        except OSError:
            return
        for pid in pids:
            if not _in_group(pid, self.shells.get(job)):  # the group had it from killpg
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)

    def started(self, job: int, pid: int) -> None:
        self.shells[job] = pid

    def ended(self, job: int) -> tuple[float, int] | None:
        self.shells.pop(job, None)
        path = self.jobs.pop(job, None)
        if path is None:
            return None
        limited = path in self.limited
        self.limited.discard(path)
        if path not in self.killed and self._empty(path):
            if len(self.spent) < ENDED_CGROUPS_KEPT and not limited:
                self.spent.append(path)
            else:
                self._forget(path)
                limits.remove_empty(path)
            return None
        self._kill(path)
        self._forget(path)
        if limits.remove_empty(path):
            self.killed.discard(path)
        else:
            self.dying[path] = time.monotonic()
        return None

    def _empty(self, path: str) -> bool:
        """Whether a cgroup that still exists has no process left in it."""
        try:
            if path not in self.events:
                self.events[path] = os.open(f"{path}/cgroup.events", os.O_RDONLY | os.O_CLOEXEC)
            return b"populated 0" in os.pread(self.events[path], 256, 0)
        except OSError:  # removed (as stale, by another runner): not to be used
            return False

    def _kill(self, path: str) -> None:
        self.killed.add(path)
        with contextlib.suppress(OSError):
            limits.write_file(f"{path}/cgroup.kill", "1")

    def _forget(self, path: str) -> None:
        """Close what is open of a cgroup that no job will use again."""
        for fds in (self.dirs, self.events):
            fd = fds.pop(path, None)
            if fd is not None:
                os.close(fd)

    def poll(self, now: float) -> None:
        if self.dying and now >= self.next_removal:
            removed = [path for path in self.dying if limits.remove_empty(path)]
            for path in removed:
                del self.dying[path]
            self.killed.difference_update(removed)
            # A process slow to die (in uninterruptible sleep) is looked for less often.
            young = any(now - since < EMPTY_WAIT_S for since in self.dying.values())
            self.next_removal = now + (DYING_SCAN_S if young else SLOW_DYING_SCAN_S)

    def next_due(self, now: float) -> float | None:
        return self.next_removal if self.dying else None

    def close(self) -> None:
        for path in list({*self.dirs, *self.events}):
            self._forget(path)
        with contextlib.suppress(OSError):
            limits.write_file(f"{self.base}/cgroup.kill", "1")
        give_up = time.monotonic() + EMPTY_WAIT_S
        while populated(self.base) and time.monotonic() < give_up:
            time.sleep(0.01)
        limits.remove_cgroup(self.base)
        self.limiter.close()


def _remove_stale(own: str) -> None:
    """Remove the empty cgroups of runners that are gone (their watchdog was SIGKILLed too)."""
    for base in glob.glob(f"{own}/queuectl-*-*"):
        pid = os.path.basename(base).split("-")[1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}") and not populated(base):
            limits.remove_cgroup(base)


# -- what a dead runner left


def kill_attempts(attempts: set[tuple[str, str, int]], wait_s: float = EMPTY_WAIT_S) -> int:
    """SIGKILL every process of this host started for one of `attempts` (runner id, job id,
    claim token), and the job cgroup each is in; wait (up to `wait_s`) until they are gone. How
    many were found.

    For the jobs of a runner that died here: its watchdog kills them, but nothing orders that
    before another runner frees their slots and locks. A process is known by the
    QUEUECTL_RUNNER_ID, QUEUECTL_JOB_ID and QUEUECTL_CLAIM_TOKEN in its environment, which every
    descendant inherits (not by its attempt number: a requeued job's attempts are numbered from
    1 again; and not by job and token alone: another store's runner on this host may run a job
    of the same id under the same token); one that cleared them dies with its job's cgroup,
    where there is one. A process that an older queuectl started names no runner: its job and
    token answer, as they did then.
    """
    unnamed = {(job_id, token) for _, job_id, token in attempts}
    found: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit() or (marks := _marks(int(name))) is None:
            continue
        runner, job_id, token = marks
        if (runner, job_id, token) not in attempts and (
            runner is not None or (job_id, token) not in unnamed
        ):
            continue
        pid = int(name)
        info = read_start(pid)
        if info is None:
            continue
        found[pid] = info[0]
        cgroup = cgroup_of(pid)
        if cgroup is not None and os.path.basename(os.path.dirname(cgroup)).startswith("queuectl-"):
            with contextlib.suppress(OSError):
                limits.write_file(f"{cgroup}/cgroup.kill", "1")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    count = len(found)
    give_up = time.monotonic() + wait_s
    while found and time.monotonic() < give_up:
        for pid, start in list(found.items()):
            info = read_start(pid)
            if info is None or info[0] != start or info[1] in ("Z", "X"):
                del found[pid]
        if found:
            time.sleep(0.01)
    return count


# -- subreaper and /proc


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (the state first), or None if the
    process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: fields are counted after the last ')'.
    return data[data.rindex(b")") + 2 :].split()


def read_start(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks since boot, state) of a process, or None if it is gone."""
    fields = stat_fields(pid)
    return None if fields is None else (int(fields[19]), fields[0].decode())


def _children(pid: int) -> list[int]:
    """The children of every thread of `pid` (empty if it is gone)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as handle:
                found.extend(int(word) for word in handle.read().split())
        except OSError:
            continue
    return found


def _marks(pid: int) -> tuple[str | None, str, int] | None:
    """The runner, job and claim token a process was started for, from its environment (no
    runner for one an older queuectl started)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return None
    runner = job_id = token = None
    for word in words:
        if word.startswith(b"QUEUECTL_JOB_ID="):
            job_id = word[16:].decode(errors="replace")
        elif word.startswith(b"QUEUECTL_CLAIM_TOKEN="):
            token = word[21:].decode(errors="replace")
        elif word.startswith(RUNNER_ENV_PREFIX):
            runner = word[len(RUNNER_ENV_PREFIX) :].decode(errors="replace")
    if job_id is None or token is None or not token.isdigit():
        return None
    return runner, job_id, int(token)


def _marker(pid: int) -> tuple[str, int] | None:
    """The job and claim token a process was started for, from its environment."""
    marks = _marks(pid)
    return None if marks is None else (marks[1], marks[2])


@dataclass
class _Job:
    key: tuple[str, int]
    shell: int | None = None
    started_at: float = field(default_factory=time.monotonic)
    known: dict[int, int] = field(default_factory=dict)  # pid -> start time
    cpu_s: float = 0.0  # what its orphans that the runner reaped cost
    max_rss_kib: int = 0


class ProcTree(Tree):
    """The runner as a child subreaper, following each job's descendants through /proc.

    A running job's tree is walked from its shell (through /proc/PID/task/TID/children) and
    from the runner's own children that are neither job shells nor the watchdog: orphans,
    known from an earlier walk or told by the QUEUECTL_JOB_ID and QUEUECTL_CLAIM_TOKEN in their
    environment. Each pid is kept with its start time (pids are reused) and told to the
    watchdog. Orphans are reaped by pid, never by waitpid(-1), which would take a job's status.
    """

    kind = "subreaper"

    def __init__(self, keep: set[int]) -> None:
        super().__init__()
        self.pid = os.getpid()
        self.keep = keep  # the runner's children that are not jobs' (the watchdog)
        self.jobs: dict[int, _Job] = {}
        self.dying: dict[int, _Job] = {}  # ended jobs with processes still to kill
        self.ended_keys: dict[tuple[str, int], None] = {}
        self.next_scan = 0.0
        self.next_dying = 0.0

    @classmethod
    def make(cls, keep: set[int]) -> ProcTree | None:
        if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
            return None
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
                return None
        except (OSError, AttributeError):
            return None
        return cls(keep)

    def new_job(self, job_id: str, token: int) -> int:
        serial = super().new_job(job_id, token)
        self.jobs[serial] = _Job((job_id, token))
        return serial

    def started(self, job: int, pid: int) -> None:
        self.jobs[job].shell = pid

    def signal(self, job: int, signum: int) -> None:
        found = self.jobs.get(job) or self.dying.get(job)
        if found is not None:
            self._scan([found])
            self._kill(found, signum)

    def ended(self, job: int) -> tuple[float, int] | None:
        found = self.jobs.pop(job, None)
        if found is None:
            return None
        found.shell = None  # reaped: its pid may be reused
        self.ended_keys[found.key] = None
        while len(self.ended_keys) > ENDED_KEPT:
            del self.ended_keys[next(iter(self.ended_keys))]
        self.dying[job] = found
        self._finish_dying()
        return (found.cpu_s, found.max_rss_kib) if found.max_rss_kib else None

    def poll(self, now: float) -> None:
        if self.dying and now >= self.next_dying:
            self.next_dying = now + DYING_SCAN_S
            self._finish_dying()
        due = [job for job in self.jobs.values() if now - job.started_at >= SCAN_AFTER_S]
        if due and now >= self.next_scan:
            self.next_scan = now + SCAN_EVERY_S
            self._scan(due)

    def next_due(self, now: float) -> float | None:
        times = [self.next_dying] if self.dying else []
        if self.jobs:
            oldest = min(job.started_at for job in self.jobs.values())
            times.append(max(self.next_scan, oldest + SCAN_AFTER_S))
        return min(times) if times else None

    def close(self) -> None:
        for serial in list(self.jobs):
            self.ended(serial)
        give_up = time.monotonic() + EMPTY_WAIT_S
        while self.dying and time.monotonic() < give_up:
            time.sleep(0.01)
            self._finish_dying()
        self.limiter.close()

    # -- the walk

    def _finish_dying(self) -> None:
        """SIGKILL what ended jobs left (again: a dying process's children re-parent later)."""
        self._scan(list(self.dying.values()))
        for serial, job in list(self.dying.items()):
            self._kill(job, signal.SIGKILL)
            self._reap(job)
            if not job.known:
                del self.dying[serial]

    def _scan(self, jobs: list[_Job]) -> None:
        """Add to these jobs what descends from their shells and from the runner's orphans."""
        by_key = {job.key: job for job in (*self.jobs.values(), *self.dying.values())}
        shells = {job.shell for job in self.jobs.values() if job.shell is not None}
        owner_of = {pid: job for job in by_key.values() for pid in job.known}
        for pid in _children(self.pid):
            if pid in shells or pid in self.keep:
                continue
            info = read_start(pid)
            if info is None:
                continue
            owner = owner_of.get(pid)
            if owner is not None and owner.known.get(pid) != info[0]:
                owner = None  # a reused pid
            if owner is None:
                marker = _marker(pid)
                owner = by_key.get(marker) if marker is not None else None
                if owner is None and marker in self.ended_keys:
                    owner = self._revive(marker)
            if owner is not None:
                self._add(owner, pid, info[0])
            elif info[1] == "Z":
                self._waitpid(pid)  # an orphan that died before it was seen: reap it
        for job in jobs:
            seen: set[int] = set()
            roots = [job.shell] if job.shell is not None else []
            for root in [*roots, *job.known]:
                self._descend(job, root, seen)

    def _revive(self, key: tuple[str, int]) -> _Job:
        """An ended attempt's late orphan: its job is dying again, for this process."""
        self._serial += 1
        job = _Job(key)
        self.dying[self._serial] = job
        return job

    def _descend(self, job: _Job, root: int, seen: set[int]) -> None:
        pending = [root]
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            if pid != root and pid not in job.known:
                info = read_start(pid)
                if info is None:
                    continue
                self._add(job, pid, info[0])
            pending.extend(_children(pid))

    def _add(self, job: _Job, pid: int, start: int) -> None:
        if job.known.get(pid) != start:
            job.known[pid] = start
            self.watch.append(f"+p{pid}:{start}")

    def _kill(self, job: _Job, signum: int) -> None:
        for pid, start in list(job.known.items()):
            info = read_start(pid)
            if info is None or info[0] != start:
                self._forget(job, pid)
            elif info[1] != "Z" and (signum == signal.SIGKILL or not _in_group(pid, job.shell)):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signum)

    def _reap(self, job: _Job) -> None:
        """Forget the job's processes that are gone, reaping those that are the runner's."""
        for pid, start in list(job.known.items()):
            info = read_start(pid)
            if info is None or info[0] != start or (info[1] == "Z" and self._waitpid(pid, job)):
                self._forget(job, pid)

    def _forget(self, job: _Job, pid: int) -> None:
        self.watch.append(f"-p{pid}:{job.known.pop(pid)}")

    def _waitpid(self, pid: int, job: _Job | None = None) -> bool:
        """Reap `pid` if it is the runner's zombie, adding its cost to `job`'s; True once it
        is gone either way."""
        try:
            reaped, _, usage = os.wait4(pid, os.WNOHANG)
            if reaped != 0 and job is not None:
                job.cpu_s += usage.ru_utime + usage.ru_stime
                job.max_rss_kib = max(job.max_rss_kib, usage.ru_maxrss)
            return reaped != 0
        except ChildProcessError:
            return read_start(pid) is None  # another's child: gone once its parent reaps it


def open_tree(keep: set[int]) -> Tree:
    """The best way this system offers; `keep` are the runner's children that are no job's."""
    if not sys.platform.startswith("linux"):
        return Tree()
    if os.environ.get(NO_CGROUP_ENV) == "1":
        return ProcTree.make(keep) or Tree()
    tree: Tree | None = CgroupTree.make()
    if tree is None:
        tree = ProcTree.make(keep) or Tree()
    tree.limiter = limits.make(tree.base if isinstance(tree, CgroupTree) else None)
    return tree
