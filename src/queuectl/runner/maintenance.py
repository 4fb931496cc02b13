"""A runner's maintenance: small tasks, each run between jobs on an interval of its own.

The loop runs `Maintenance.run_due` every turn; a task runs once its `due` instant (monotonic)
has come, and is due again `interval()` later unless it says otherwise. The loop sleeps no
longer than the earliest `due`, so a task that is never due costs nothing.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from typing import TYPE_CHECKING

from queuectl import progress
from queuectl.errors import NewerSchemaError, QueuectlError
from queuectl.models import CANCELLED, COMPLETED, DEAD
from queuectl.runner import executor
from queuectl.runner.liveness import is_alive, is_dead, is_local
from queuectl.runner.recovery import recover

if TYPE_CHECKING:
    from queuectl.runner.supervisor import Supervisor
    from queuectl.store import Runner

TICK_S = 1.0  # dead runners of this host, live output; the store read while jobs run
#: How often an idle runner reads the store (cancellations, runners, expired leases, schedules,
#: configuration, the fallback poll): every change among them but a lease expiring wakes it.
IDLE_READ_S = 2.0
READ_MIN_S = 0.2  # at most this often do wakeups trigger a store read (stop requests, cancels)
EXPIRY_S = 10.0  # how often finished jobs past their retention are deleted
EXPIRY_BATCH = 100  # jobs deleted per transaction: a short write lock, never a long wait
EXPIRY_MAX_BATCHES = 100  # per round; a larger backlog takes several rounds
DEADLINE_BATCH = 100  # jobs past their deadline cancelled per transaction
#: The counts of attempts that ended are kept this long: the reads look back an hour.
FINISHED_MINUTES_KEPT_MS = 2 * 3_600_000
#: Those counts are kept per minute: cutting them more often deletes nothing.
FORGET_S = 60.0
PROGRESS_TAIL = 4096  # bytes of a progress file read for its last line


class Periodic:
    """A maintenance task of one runner."""

    due = 0.0  # when it runs next (monotonic); at once at first

    def __init__(self, runner: Supervisor) -> None:
        self.runner = runner

    def interval(self) -> float:
        """How long after a run it is due again (read as it starts)."""
        raise NotImplementedError

    def run(self, now: float) -> None:
        raise NotImplementedError


class Maintenance:
    """The maintenance tasks of one runner, run in their order when due."""

    def __init__(self, tasks: Sequence[Periodic]) -> None:
        self.tasks = tasks
        self.due = 0.0  # the earliest task's

    def run_due(self, now: float) -> None:
        """Run the tasks that are due (a StoreError leaves those not run yet due)."""
        if now < self.due:
            return
        try:
            for task in self.tasks:
                if now >= task.due:
                    task.due = now + task.interval()
                    task.run(now)
        finally:
            self.due = min(task.due for task in self.tasks)

    def sooner(self, task: Periodic, at: float) -> None:
        """Make `task` due at `at` if that is sooner."""
        if at < task.due:
            task.due = at
            self.due = min(self.due, at)


class Heartbeat(Periodic):
    """Renew this runner and its leases; a stop request or a lost registration answers. First
    in line: its own leases are renewed before the store read recovers expired ones."""

    def interval(self) -> float:
        return float(self.runner.config["lease_seconds"]) / 3  # a missed beat or two is survivable

    def run(self, now: float) -> None:
        runner = self.runner
        try:
            stop = runner.store.heartbeat(runner.id, float(runner.config["lease_seconds"]))
        except NewerSchemaError as exc:
            runner.newer_schema(now, exc)
            return
        if stop is None:
            runner.reregister()
        else:
            runner.stop_asked(now, stop)


class Schedules(Periodic):
    """Enqueue the jobs of schedules whose slot has come (the store makes each slot once)."""

    due = math.inf  # until the store read says when the next slot is
    due_ms: int | None = None  # the next slot, as last read

    def interval(self) -> float:
        return math.inf  # run() says when

    def learn(self, now: float, due_ms: int | None) -> None:
        """The next slot, as the store read saw it."""
        self.due_ms = due_ms
        self.run(now)

    def run(self, now: float) -> None:
        runner = self.runner
        if runner.stopping:
            self.due = math.inf
            return
        store = runner.store
        due_ms = self.due_ms
        now_ms = store.clock.now_ms()
        if due_ms is not None and due_ms <= now_ms:
            for firing in store.fire_schedules():
                name = firing.schedule
                if firing.error:
                    runner.log(
                        "schedule_failed",
                        f"schedule {name} could not enqueue: {firing.error}",
                        important=True,
                        schedule=name,
                    )
                else:
                    job_id = firing.job_id
                    runner.log(
                        "scheduled", f"schedule {name} enqueued {job_id}", schedule=name, job=job_id
                    )
                runner.may_have_work = True
            due_ms = self.due_ms = store.next_schedule_ms()
        self.due = math.inf if due_ms is None else now + max(0.0, (due_ms - now_ms) / 1000)


class StoreRead(Periodic):
    """Read the store once: honour a stop request, kill what is not ours, recover the jobs of
    dead runners, learn the next schedule slot, and poll for work that a lost wakeup hid."""

    last = -math.inf  # when it last ran

    def __init__(self, runner: Supervisor, schedules: Schedules) -> None:
        super().__init__(runner)
        self.schedules = schedules
        self.next_poll_at = 0.0

    def interval(self) -> float:
        # Busy, every tick: a job cancelled or taken is killed within a second even if its
        # wakeup was lost. Idle, less often: a dead runner of this host is still seen within
        # a tick (ReapLocal), and every other change wakes this runner.
        return TICK_S if self.runner.slots.running else IDLE_READ_S

    def run(self, now: float) -> None:
        self.last = now
        runner = self.runner
        store = runner.store
        seen = store.housekeeping(runner.id, runner.queues, runner.tags)
        runner.config = seen.config
        me = next((r for r in seen.runners if r.id == runner.id), None)
        if me is None:
            runner.reregister()
        else:
            runner.stop_asked(now, me.stop_requested)
        runner.check_owned(now, seen.owned)
        runner.others = [r for r in seen.runners if r.id != runner.id]
        now_ms = store.clock.now_ms()
        lease_s = float(runner.config["lease_seconds"])
        dead = [r for r in runner.others if is_dead(r, now_ms, lease_s)]
        if dead or seen.expired:
            recover_lost(runner, dead)
        self.schedules.learn(now, seen.next_schedule_ms)
        if now >= self.next_poll_at:
            self.next_poll_at = now + runner.poll_s
            if seen.startable:
                runner.may_have_work = True
                runner.next_claim_at = 0.0


class ReapLocal(Periodic):
    """Between store reads: recover the jobs of a runner of this host whose process is gone
    (its process answers; no need to ask the store)."""

    def __init__(self, runner: Supervisor, read: StoreRead) -> None:
        super().__init__(runner)
        self.read = read

    def interval(self) -> float:
        return TICK_S

    def run(self, now: float) -> None:
        if self.read.last == now:
            return  # the read of this very turn judged every runner
        others = self.runner.others
        dead = [r for r in others if is_local(r) and not is_alive(r.pid, r.pid_started)]
        if dead:
            recover_lost(self.runner, dead)


def recover_lost(runner: Supervisor, dead: list[Runner]) -> None:
    """Recover the jobs of dead runners (at once on this host) and of expired leases, never
    those of a live runner of this host, this one included."""
    store = runner.store
    now_ms = store.clock.now_ms()
    lease_s = float(runner.config["lease_seconds"])
    done = recover(store, runner.others, dead, now_ms, lease_s, mine=[runner.id])
    if done.killed:
        runner.log("leftovers", f"killed {done.killed} process(es) of lost jobs", important=True)
    for job_id in done.jobs:
        runner.log("lost", f"recovered {job_id}: its runner was lost", important=True, job=job_id)
        runner.next_claim_at = 0.0  # its slot or lock may let a job start now
    gone = set(done.runners)  # unregistered now, by this runner or another
    runner.others = [r for r in runner.others if r.id not in gone]


class OutputSync(Periodic):
    """Copy the output of long-running jobs to the store, for `logs --follow` anywhere."""

    def interval(self) -> float:
        return TICK_S

    def run(self, now: float) -> None:
        runner = self.runner
        limit = int(runner.config["output_limit"])
        for attempt in runner.slots.running.values():
            if now - attempt.started_mono < TICK_S or attempt.pid is None:
                continue
            size = executor.output_size(attempt)
            if size > limit + executor.TRIM_SLACK:
                executor.trim(attempt, limit)
            if size != attempt.synced_size:
                attempt.synced_size = size
                claim = attempt.claim
                tail = executor.tail(attempt, limit)
                dropped = max(0, size - len(tail))
                runner.store.save_output(runner.id, claim.id, claim.token, tail, dropped)


class ProgressFiles(Periodic):
    """Record the last line of each running job's progress file (QUEUECTL_PROGRESS_FILE)
    when it changed: a report from a job that cannot run `queuectl progress`."""

    def interval(self) -> float:
        return TICK_S

    def run(self, now: float) -> None:
        runner = self.runner
        for attempt in runner.slots.running.values():
            if attempt.progress_file is None or attempt.abandoned:
                continue
            try:
                # A stat first: most jobs write no report, and a file unchanged is not opened.
                info = os.stat(attempt.progress_file)
                if (info.st_size, info.st_mtime_ns) == attempt.progress_seen or not info.st_size:
                    continue
                # Never blocking: the job owns the path and may make it a FIFO or a device.
                fd = os.open(attempt.progress_file, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
                try:
                    info = os.fstat(fd)
                    seen = (info.st_size, info.st_mtime_ns)
                    if not stat.S_ISREG(info.st_mode) or seen == attempt.progress_seen:
                        continue
                    attempt.progress_seen = seen
                    start = max(0, info.st_size - PROGRESS_TAIL)
                    data = os.pread(fd, info.st_size - start, start)
                finally:
                    os.close(fd)
            except OSError:
                continue  # none written yet
            lines = [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
            if not lines:
                continue
            try:
                done, total, message = progress.parse(lines[-1])
            except QueuectlError as exc:
                runner.log("bad_progress", f"{attempt.claim.id}: {exc}", job=attempt.claim.id)
                continue
            claim = attempt.claim
            runner.store.save_progress(claim.id, claim.token, done, total, message)


class Expiry(Periodic):
    """Delete finished jobs older than their retention, in small batches."""

    def interval(self) -> float:
        return EXPIRY_S

    def run(self, now: float) -> None:
        runner = self.runner
        now_ms = runner.store.clock.now_ms()
        for states, key in (([COMPLETED, CANCELLED], "retain_completed"), ([DEAD], "retain_dead")):
            keep_s = float(runner.config[key])
            if keep_s <= 0:
                continue
            before_ms = now_ms - round(keep_s * 1000)
            for _ in range(EXPIRY_MAX_BATCHES):
                if runner.store.expire(states, before_ms, EXPIRY_BATCH) < EXPIRY_BATCH:
                    break


class AuditExpiry(Periodic):
    """Delete the audit's entries older than `retain_audit`, in small batches."""

    def interval(self) -> float:
        return EXPIRY_S

    def run(self, now: float) -> None:
        runner = self.runner
        keep_s = float(runner.config.get("retain_audit", 0))
        if keep_s <= 0:
            return
        before_ms = runner.store.clock.now_ms() - round(keep_s * 1000)
        for _ in range(EXPIRY_MAX_BATCHES):
            if runner.store.expire_audit(before_ms, EXPIRY_BATCH) < EXPIRY_BATCH:
                break


class Deadlines(Periodic):
    """Cancel the jobs whose deadline (`--expires`) passed before they started, and their
    dependants, in small batches: a claim never starts such a job, this ends it."""

    def interval(self) -> float:
        return IDLE_READ_S  # a probe of an index of the jobs with a deadline; mostly empty

    def run(self, now: float) -> None:
        runner = self.runner
        for _ in range(EXPIRY_MAX_BATCHES):
            expired = runner.store.expire_unstarted(DEADLINE_BATCH)
            for job_id in expired:
                runner.log("expired", f"cancelled {job_id}: expired before it started", job=job_id)
            if len(expired) < DEADLINE_BATCH:
                break


class ForgetMinutes(Periodic):
    """Delete the counts of attempts that ended longer ago than any read looks back."""

    def interval(self) -> float:
        return FORGET_S

    def run(self, now: float) -> None:
        store = self.runner.store
        cut_minute = (store.clock.now_ms() - FINISHED_MINUTES_KEPT_MS) // 60_000
        store.forget_finished_minutes(cut_minute * 60_000)


def maintenance_of(runner: Supervisor) -> tuple[Maintenance, StoreRead]:
    """A runner's maintenance, and its store read (which wakeups and claims hasten)."""
    schedules = Schedules(runner)
    read = StoreRead(runner, schedules)
    tasks = [
        Heartbeat(runner),
        read,
        schedules,
        ReapLocal(runner, read),
        OutputSync(runner),
        ProgressFiles(runner),
        Expiry(runner),
        ForgetMinutes(runner),
        AuditExpiry(runner),
        Deadlines(runner),
    ]
    return Maintenance(tasks), read
