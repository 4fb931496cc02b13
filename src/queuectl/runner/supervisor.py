"""The runner process: one event loop that claims jobs, runs them on N slots and keeps leases.

Everything happens on the main thread: a selector waits on the store's wakeup listener and on
the signal wakeup fd (SIGCHLD, SIGINT, SIGTERM, SIGHUP), with a timeout set by the nearest timer (a
job's timeout, the next delayed job, housekeeping). Finished attempts are settled and new jobs
claimed in one transaction.

Crash behaviour: a watchdog process holds a pipe to the runner and SIGKILLs the recorded
process groups when the runner dies; the runner's jobs are then recovered by any other runner,
at once on this host (the pid is gone) or after the lease elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from typing import Any

from queuectl.errors import InvalidInputError, NewerSchemaError, StoreError
from queuectl.lifecycle import Fence, Outcome, Settlement
from queuectl.models import CANCELLED, COMPLETED, DEAD, limits_mask
from queuectl.runner import executor
from queuectl.runner.executor import Attempt
from queuectl.runner.liveness import (
    host_name,
    is_alive,
    is_dead,
    is_local,
    kill_leftovers,
    live_local,
    process_started,
)
from queuectl.runner.log import EventLog
from queuectl.runner.tree import open_tree
from queuectl.store import Runner, Store, open_store

POLL_S = 2.0  # the fallback poll for work, for a wakeup that was lost (made by the store read)
#: Tests lengthen the poll, so that only a wakeup can explain a prompt start.
POLL_ENV = "QUEUECTL_POLL_S"
EXPIRY_S = 10.0  # how often finished jobs past their retention are deleted
EXPIRY_BATCH = 100  # jobs deleted per transaction: about 40 ms of write lock, never a long wait
EXPIRY_MAX_BATCHES = 100  # per round (up to 1,000 jobs a second); a larger backlog takes rounds
#: The counts of attempts that ended are kept this long: the reads look back an hour.
FINISHED_MINUTES_KEPT_MS = 2 * 3_600_000
TICK_S = 1.0  # housekeeping: dead runners of this host, live output; the store read if busy
#: How often an idle runner reads the store (cancellations, runners, expired leases, schedules,
#: configuration, the fallback poll): every change among them but a lease expiring wakes it.
IDLE_READ_S = 2.0
CONTROL_MIN_S = 0.2  # at most this often do wakeups trigger a check of stop requests and cancels
TRIM_SLACK = 1 << 20  # output beyond output_limit that may pile up before it is freed
STORE_RETRY_S = 1.0  # how often an unreachable store is tried again
STORE_GIVE_UP_S = 30.0  # how long unwritten results may hold a stopping runner's exit


def poll_seconds(text: str | None) -> float:
    """The fallback poll: POLL_S, or QUEUECTL_POLL_S when set (a positive number of seconds;
    zero would spin the runner's loop)."""
    if not text:
        return POLL_S
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise InvalidInputError(f"{POLL_ENV}: expected a positive number of seconds, got {text!r}")
    return seconds


class Supervisor:
    """One runner: `count` worker slots serving `queues` (None: every queue)."""

    def __init__(
        self,
        target: str | None,
        count: int = 1,
        queues: list[str] | None = None,
        grace_s: float | None = None,
        log: EventLog | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        self.target = target
        self.count = count
        self.queues = queues
        self.grace_s = grace_s
        self.log = log or EventLog()
        #: By (job id, claim token): a cancelled attempt still dying and a later claim of its
        #: job are two attempts, each killed and reported on its own.
        self.running: dict[tuple[str, int], Attempt] = {}
        self.signals: list[int] = []
        self.stopping = False
        self.stop_by_request = False  # stopping because the store asked, and only for that
        self.stop_at: float | None = None  # when the jobs still running are killed and released
        self.may_have_work = True
        self.poll_s = poll_s
        self.next_claim_at = 0.0
        self.next_poll_at = 0.0
        self.next_tick = 0.0
        self.next_read = 0.0
        self.next_heartbeat = 0.0
        self.next_expiry = 0.0
        self.forgot_before_minute = -1  # the minute finished_minutes was last cut at
        self.next_schedule_at: float | None = None
        self.schedule_due_ms: int | None = None  # the next schedule slot, as last read
        self.others: list[Runner] = []  # the other runners, as last read
        self.unsent: list[Outcome] = []  # results not yet written (the store may be down)
        #: Jobs stopped by shutdown, to give back: (job id, claim token).
        self.unreleased: list[tuple[str, int]] = []
        self.store_error: str | None = None
        self.store_retry_at = 0.0
        self.exit_code = 0
        self.give_up_at = float("inf")  # when a stopping runner stops waiting for the store
        self.last_control = 0.0
        self.control_due = False
        self.store: Store
        self.config: dict[str, float] = {}
        self.id = f"{host_name()}-{os.getpid()}-{os.urandom(2).hex()}"
        self.base_env = dict(os.environ)
        self.watch_lines: list[bytes] = []

    # -- life of the runner

    def run(self) -> int:
        """Serve until stopped; 0 after a graceful stop."""
        self.store = open_store(self.target, durable=False)
        self.ledger = self.store.ledger()  # what this runner's claims hold between exchanges
        self.config = self.store.config()
        listener = self.store.listener(self.id)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        previous_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        handlers = {
            signum: signal.signal(signum, self._on_signal)
            # SIGHUP (its terminal closed, an SSH session dropped) is a graceful stop too.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
        }
        self.watchdog = subprocess.Popen(
            [sys.executable, "-m", "queuectl.runner.watchdog"],
            stdin=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
        )
        self.tree = open_tree({self.watchdog.pid})
        executor.probe(self.tree)
        selector = self.selector = selectors.DefaultSelector()
        selector.register(wake_r, selectors.EVENT_READ, "signal")
        if listener is not None:
            selector.register(listener, selectors.EVENT_READ, "wakeup")
        where = ", ".join(self.queues) if self.queues else "every queue"
        self.log(
            "runner_started",
            f"runner {self.id} started: {self.count} worker{'s' if self.count != 1 else ''} "
            f"on {where} ({self.store.describe()['target']})",
            important=True,
            runner=self.id,
            workers=self.count,
            queues=self.queues,
        )
        try:
            # Registered only now that SIGTERM is handled: a runner that others can see
            # (`worker start --detach`, systemd) must stop gracefully, not die of the signal.
            try:
                self._register()
            except StoreError as exc:
                # The store went away between opening it and now: wait for it like any
                # outage; the first heartbeat that finds this runner unknown registers it.
                self._store_lost(time.monotonic(), exc)
            self._loop(selector, wake_r, listener)
        finally:
            for attempt in list(self.running.values()):
                executor.signal_group(attempt, signal.SIGKILL)
            self.tree.close()
            with contextlib.suppress(Exception):
                self.store.unregister_runner(self.id)
            if self.watchdog.stdin is not None:
                self.watchdog.stdin.close()
            self.watchdog.wait()
            selector.close()
            signal.set_wakeup_fd(previous_fd)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            os.close(wake_r)
            os.close(wake_w)
            if listener is not None:
                listener.close()
            self.store.close()
        self.log("runner_stopped", f"runner {self.id} stopped", important=True, runner=self.id)
        return self.exit_code

    def _register(self) -> None:
        self.store.register_runner(
            Runner(
                id=self.id,
                host=host_name(),
                pid=os.getpid(),
                workers=self.count,
                queues=self.queues,
                started_at_ms=0,  # stamped by the store's clock
                heartbeat_at_ms=0,
                pid_started=process_started(os.getpid()),
                enforces=self.tree.limiter.enforces,
            )
        )

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def _loop(self, selector: selectors.BaseSelector, wake_r: int, listener: Any) -> None:
        while True:
            now = time.monotonic()
            self._handle_signals(now)
            self._collect(now)
            if self.store_error is None or now >= self.store_retry_at:
                self._talk_to_store(now)
            if self.stopping and not self.running and not self.unsent and not self.unreleased:
                return
            if self.stopping and not self.running and now >= self.give_up_at:
                self.log(
                    "gave_up",
                    "the store is still unreachable: exiting; its jobs will be "
                    "recovered as worker lost",
                    important=True,
                )
                self.exit_code = 1
                return
            self.tree.poll(time.monotonic())
            self._flush_watch()
            timeout = self._next_timer(time.monotonic())
            for key, _ in selector.select(timeout):
                if isinstance(key.data, Attempt):
                    self._pump(key.data)
                elif key.data == "signal":
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_r, 512):
                            pass
                else:
                    listener.drain()
                    self.may_have_work = True
                    self.control_due = True

    def _talk_to_store(self, now: float) -> None:
        """Every store call of one loop turn; an unreachable store pauses claiming, not jobs."""
        try:
            self._exchange(now)
            if now >= self.next_tick:
                self._housekeeping(now)
            elif self.next_schedule_at is not None and now >= self.next_schedule_at:
                self._fire_schedules(now)
            elif self.control_due and now - self.last_control >= CONTROL_MIN_S:
                self._control(now)
        except StoreError as exc:
            self._store_lost(now, exc)
            return
        if self.store_error is not None:
            self.log("store_back", "the store is reachable again", important=True)
            self.store_error = None

    def _store_lost(self, now: float, exc: StoreError) -> None:
        """Note an unreachable store (said once) and when to try it again."""
        if self.store_error is None:
            self.log(
                "store_unreachable",
                f"cannot use the store: {exc}; running jobs go on, their results are kept "
                "until it is back, no new job is claimed",
                important=True,
            )
        self.store_error = str(exc)
        self.store_retry_at = now + STORE_RETRY_S

    def _next_timer(self, now: float) -> float:
        timers = []
        for attempt in self.running.values():
            if attempt.kill_at is not None:
                timers.append(attempt.kill_at)
            elif attempt.deadline is not None:
                timers.append(attempt.deadline)
        if self.stop_at is not None:
            timers.append(self.stop_at)
        if (tree_at := self.tree.next_due(now)) is not None:
            timers.append(tree_at)
        if self.store_error is not None:
            timers.append(self.store_retry_at)  # nothing else needs the store until it is back
            if self.stopping and not self.running:
                timers.append(self.give_up_at)
            return max(0.0, min(timers) - now)
        timers.append(self.next_tick)
        if self.control_due:
            timers.append(self.last_control + CONTROL_MIN_S)
        if not self.stopping and len(self.running) < self.count:
            timers.append(self.next_claim_at)
        if self.next_schedule_at is not None:
            timers.append(self.next_schedule_at)
        return max(0.0, min(timers) - now)

    # -- signals and stopping

    def _handle_signals(self, now: float) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            if signum == signal.SIGCHLD:
                continue
            name = signal.Signals(signum).name
            if self.stopping and signum == signal.SIGINT:
                self.log("stop_now", f"{name} again: stopping now", important=True)
                self.stop_at = now
                self.give_up_at = now
            else:
                self.stop_by_request = False
                self._begin_stop(now, f"{name} received")

    def _stop_asked(self, now: float, asked: bool) -> None:
        """Follow the store's stop request: begin stopping, or go on serving once it is
        withdrawn (`worker stop --cancel`) while this runner still drains. A signal's stop
        is not the store's to withdraw."""
        if asked:
            if not self.stopping:
                self._begin_stop(now, "stop requested")
                self.stop_by_request = True
        elif (
            self.stopping and self.stop_by_request and (self.stop_at is None or now < self.stop_at)
        ):
            self.stopping = self.stop_by_request = False
            self.stop_at = None
            self.give_up_at = float("inf")
            self.may_have_work = True
            self.next_claim_at = 0.0
            self.log("resumed", "stop request withdrawn: taking jobs again", important=True)

    def _begin_stop(self, now: float, why: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        if self.grace_s is not None:
            self.stop_at = now + self.grace_s
        self.give_up_at = now + STORE_GIVE_UP_S
        grace = "" if self.grace_s is None else f", for at most {self.grace_s:g}s"
        self.log(
            "stopping",
            f"{why}: stopping; waiting for {len(self.running)} running job(s){grace}",
            important=True,
        )

    # -- attempts

    def _collect(self, now: float) -> None:
        """Turn attempts whose process ended into results to write; kill what must die."""
        for attempt in list(self.running.values()):
            if attempt.poll():
                self._pump(attempt)  # what it wrote last; a grandchild's later writes are lost
                self._stop_reading(attempt)
                executor.end(attempt)  # what the shell left behind dies with the job
                if attempt.pgid is not None:
                    self._watch(f"-{attempt.pgid}")
                self._watch(f"-a{attempt.claim.id}:{attempt.claim.attempt}")
                del self.running[attempt.claim.id, attempt.claim.token]
                self._result(attempt)
                continue
            if self.stop_at is not None and now >= self.stop_at and not attempt.released:
                attempt.released = True
                executor.terminate(attempt, now, None)
            if attempt.kill_at is not None:
                if now >= attempt.kill_at:
                    executor.signal_group(attempt, signal.SIGKILL)
            elif attempt.deadline is not None and now >= attempt.deadline:
                executor.terminate(attempt, now, f"timed out after {attempt.timeout_s:g}s")
                self.log(
                    "timeout",
                    f"timed out {attempt.claim.id} after {attempt.timeout_s:g}s",
                    job=attempt.claim.id,
                )

    def _result(self, attempt: Attempt) -> None:
        """Queue what must be written about an ended attempt (nothing if it is not ours)."""
        claim = attempt.claim
        if attempt.released:
            self.unreleased.append((claim.id, claim.token))
            executor.close(attempt)
            return
        output = executor.tail(attempt, int(self.config["output_limit"]))
        dropped = max(0, executor.output_size(attempt) - len(output))
        ended = time.monotonic()
        if attempt.abandoned:
            # Cancelled (or lost): no settlement follows, but a cancelled attempt's history
            # keeps what it printed; the store refuses the output of an attempt not ours.
            # Best effort: with the store unreachable, that output is lost, not the turn.
            with contextlib.suppress(StoreError):
                self.store.save_output(self.id, claim.id, claim.token, output, dropped)
            # Its processes are gone: the outcome says so, and lets go of what they held.
            self.unsent.append(
                Outcome(
                    claim.id,
                    claim.attempt,
                    attempt.exit_code,
                    attempt.error,
                    None,
                    abandoned=True,
                    token=claim.token,
                )
            )
        else:
            fence = None
            if claim.max_retries is not None:
                fence = Fence(
                    claim.attempt, claim.token, claim.max_retries, claim.no_retry_exit_codes
                )
            self.unsent.append(
                Outcome(
                    claim.id,
                    claim.attempt,
                    attempt.exit_code,
                    attempt.error,
                    duration_ms=round((ended - attempt.started_mono) * 1000),
                    output=output,
                    ended_mono=ended,
                    output_dropped=dropped,
                    fence=fence,
                    token=claim.token,
                    cpu_ms=attempt.cpu_ms,
                    max_rss_bytes=attempt.max_rss_bytes,
                )
            )
        executor.close(attempt)

    def _exchange(self, now: float) -> None:
        """Write results and claim new jobs, in one transaction."""
        while self.unreleased:
            job_id, token = self.unreleased[0]
            self.store.release(self.id, job_id, token, self.ledger)
            self.unreleased.pop(0)
            self.log("released", f"released {job_id}: back to pending", job=job_id)
        outcomes = self.unsent
        free = self.count - len(self.running)
        wants_work = outcomes or self.may_have_work or now >= self.next_claim_at
        want = free if free > 0 and not self.stopping and wants_work else 0
        if not outcomes and not want:
            return
        exchange = self.store.finish_and_claim(
            self.id,
            outcomes,
            want,
            self.queues,
            float(self.config["lease_seconds"]),
            self.ledger,
            enforces=limits_mask(self.tree.limiter.enforces),
        )
        self.unsent = []
        for outcome in outcomes:
            if not outcome.abandoned:
                settlement = exchange.settled.get(outcome.job_id)
                self._log_outcome(outcome, settlement)
                if settlement is None:
                    # Cancelled as it ended by itself: nothing else will say that its processes
                    # are gone, and until then its lease holds its lock, its queue's slot and
                    # its job (requeued meanwhile). The store ignores it for an attempt reaped.
                    self.unsent.append(
                        Outcome(
                            outcome.job_id,
                            outcome.attempt,
                            outcome.exit_code,
                            outcome.error,
                            None,
                            abandoned=True,
                            token=outcome.token,
                        )
                    )
        if want:
            self.may_have_work = len(exchange.claims) == want
            if not self.may_have_work:
                self.next_claim_at = self._next_claim_time(now, exchange.next_due_ms)
        if exchange.claims:
            self.next_read = min(self.next_read, now + TICK_S)  # busy now: see _control
        for claim in exchange.claims:
            # Told before the spawn: a crash between the spawn and the next flush must take
            # this job, and whatever it started meanwhile, along.
            self._watch(f"+a{claim.id}:{claim.attempt}")
            self._flush_watch()
            attempt = executor.start(
                claim, self.base_env, float(self.config["job_timeout"]), self.tree
            )
            self.running[claim.id, claim.token] = attempt
            if attempt.pipe is not None:
                self.selector.register(attempt.pipe, selectors.EVENT_READ, attempt)
            if attempt.pgid is not None:
                self._watch(f"+{attempt.pgid}")
            self._flush_watch()  # before anything else: a crash now must take this job along
            self.log(
                "started",
                f"started {claim.id} (attempt {claim.attempt}): {claim.command[:200]}",
                job=claim.id,
                attempt=claim.attempt,
                queue=claim.queue,
            )

    def _next_claim_time(self, now: float, due_ms: int | None) -> float:
        """When to claim again unasked: when the next delayed job falls due (as the claim saw
        it). Work that comes otherwise wakes this runner; a lost wakeup is the poll's, made by
        the store read (see _control)."""
        if due_ms is None:
            return float("inf")
        # From the instant of this clock reading (not the older `now`), plus a millisecond for
        # its rounding: a claim a hair early misses the job, and then only the poll finds it.
        wait_s = (due_ms - self.store.clock.now_ms() + 1) / 1000
        return time.monotonic() + max(0.0, wait_s)

    def _log_outcome(self, outcome: Outcome, settlement: Settlement | None) -> None:
        took = f"in {outcome.duration_ms}ms"
        how = outcome.error or f"exit {outcome.exit_code}"
        job = outcome.job_id
        fields: dict[str, Any] = {
            "job": job,
            "attempt": outcome.attempt,
            "exit_code": outcome.exit_code,
            "duration_ms": outcome.duration_ms,
        }
        if settlement is None:
            self.log("fenced", f"finished {job} ({how}) but it is no longer ours", **fields)
        elif settlement.state == COMPLETED:
            self.log("completed", f"completed {job} {took}", **fields)
        elif settlement.state == DEAD:
            self.log(
                "dead", f"dead {job} ({settlement.last_error}) {took}", important=True, **fields
            )
        else:
            wait_s = settlement.retry_in_s
            self.log(
                "failed",
                f"failed {job} ({how}) {took}; retry in {wait_s:g}s",
                retry_in_s=wait_s,
                **fields,
            )

    def _pump(self, attempt: Attempt) -> None:
        """Empty the attempt's output pipe into its file, keeping about output_limit + slack."""
        limit = int(self.config["output_limit"])
        if attempt.pipe is not None and not executor.pump(attempt, limit, TRIM_SLACK):
            self._stop_reading(attempt)

    def _stop_reading(self, attempt: Attempt) -> None:
        if attempt.pipe is not None:
            self.selector.unregister(attempt.pipe)
            executor.close_pipe(attempt)

    def _watch(self, line: str) -> None:
        """Tell the watchdog (at the next flush) which process groups die with this runner."""
        self.watch_lines.append(line.encode() + b"\n")

    def _flush_watch(self) -> None:
        if self.tree.watch:
            self.watch_lines.extend(f"{line}\n".encode() for line in self.tree.watch)
            self.tree.watch.clear()
        if not self.watch_lines or self.watchdog.stdin is None:
            return
        data, self.watch_lines = b"".join(self.watch_lines), []
        try:
            os.write(self.watchdog.stdin.fileno(), data)
        except BrokenPipeError:
            self.log(
                "watchdog_lost",
                "the watchdog died: jobs may outlive a crash of this runner",
                important=True,
            )

    # -- housekeeping

    def _housekeeping(self, now: float) -> None:
        self.next_tick = now + TICK_S
        if now >= self.next_read:
            self._control(now)
        else:
            self._reap_local()
        self._sync_output(now)
        if now >= self.next_expiry:
            self.next_expiry = now + EXPIRY_S
            self._expire()

    def _control(self, now: float) -> None:
        """Read the store once (after the heartbeat, when due): honour a stop request, kill
        what is not ours, recover the jobs of dead runners, fire schedules, and poll for work
        that a lost wakeup hid."""
        self.last_control = now
        self.control_due = False
        # Busy, every tick: a job cancelled or taken is killed within a second even if its
        # wakeup was lost. Idle, less often: a dead runner of this host is still seen within
        # a tick (_reap_local), and every other change wakes this runner.
        self.next_read = now + (TICK_S if self.running else IDLE_READ_S)
        if now >= self.next_heartbeat:
            self._heartbeat(now)  # first: our own leases are renewed before expired ones are reaped
        seen = self.store.housekeeping(self.id, self.queues)
        self.config = seen.config
        me = next((r for r in seen.runners if r.id == self.id), None)
        if me is None:
            self._reregister()
        else:
            self._stop_asked(now, me.stop_requested)
        self._check_owned(now, seen.owned)
        self.others = [r for r in seen.runners if r.id != self.id]
        now_ms = self.store.clock.now_ms()
        lease_s = float(self.config["lease_seconds"])
        dead = [r for r in self.others if is_dead(r, now_ms, lease_s)]
        if dead or seen.expired:
            self._reap(dead)
        self.schedule_due_ms = seen.next_schedule_ms
        self._fire_schedules(now)
        if now >= self.next_poll_at:
            self.next_poll_at = now + self.poll_s
            if seen.startable:
                self.may_have_work = True
                self.next_claim_at = 0.0

    def _heartbeat(self, now: float) -> None:
        """Renew this runner and its leases; a stop request or a lost registration answers."""
        lease_s = float(self.config["lease_seconds"])
        self.next_heartbeat = now + lease_s / 3  # a missed beat or two is survivable
        try:
            stop = self.store.heartbeat(self.id, lease_s)
        except NewerSchemaError as exc:
            # A newer queuectl's rules (limits, locks, fences) are not known here: claim
            # nothing more; the running jobs end as in any stop.
            self.log("newer_schema", f"{exc}: stopping", important=True)
            self.exit_code = 1
            self._begin_stop(now, "the store was upgraded by a newer queuectl")
            return
        if stop is None:
            self._reregister()
        else:
            self._stop_asked(now, stop)

    def _reregister(self) -> None:
        self.log(
            "reregistered", "this runner was taken for dead; registering again", important=True
        )
        self._register()

    def _check_owned(self, now: float, owned: dict[str, int]) -> None:
        """Kill the jobs that are no longer ours; give back those leased to us but not run.
        `owned`: the claim token of each job running under this runner, as the store says."""
        for (job_id, token), attempt in self.running.items():
            if owned.get(job_id) != token and not attempt.abandoned:
                attempt.abandoned = True
                executor.terminate(attempt, now, None)
                self.log("abandoned", f"killing {job_id}: cancelled or no longer ours", job=job_id)
        # A claim whose commit was acknowledged only after a reconnect (the store replayed it)
        # leases jobs this runner never started: give them back rather than keep them forever.
        known = {(o.job_id, o.token) for o in self.unsent} | set(self.unreleased)
        for job_id, token in owned.items():
            if (job_id, token) not in self.running and (job_id, token) not in known:
                self.store.release(self.id, job_id, token, self.ledger)
                self.log(
                    "orphan",
                    f"released {job_id}: leased to this runner but never started",
                    important=True,
                    job=job_id,
                )

    def _fire_schedules(self, now: float) -> None:
        """Enqueue the jobs of schedules whose slot has come (the store makes it once per slot)."""
        if self.stopping:
            self.next_schedule_at = None
            return
        due_ms = self.schedule_due_ms
        now_ms = self.store.clock.now_ms()
        if due_ms is not None and due_ms <= now_ms:
            for firing in self.store.fire_schedules():
                name = firing.schedule
                if firing.error:
                    self.log(
                        "schedule_failed",
                        f"schedule {name} could not enqueue: {firing.error}",
                        important=True,
                        schedule=name,
                    )
                else:
                    job_id = firing.job_id
                    self.log(
                        "scheduled", f"schedule {name} enqueued {job_id}", schedule=name, job=job_id
                    )
                self.may_have_work = True
            due_ms = self.schedule_due_ms = self.store.next_schedule_ms()
        self.next_schedule_at = None if due_ms is None else now + max(0.0, (due_ms - now_ms) / 1000)

    def _reap_local(self) -> None:
        """Between store reads: recover the jobs of a runner of this host whose process is gone
        (its process answers; no need to ask the store)."""
        dead = [r for r in self.others if is_local(r) and not is_alive(r.pid, r.pid_started)]
        if dead:
            self._reap(dead)

    def _reap(self, dead: list[Runner]) -> None:
        """Recover the jobs of dead runners (at once on this host) and of expired leases, but
        never those of a live runner of this host, this one included; first kill what the
        runners of this host that are gone, or frozen past their lease, left."""
        now_ms = self.store.clock.now_ms()
        lease_s = float(self.config["lease_seconds"])
        if killed := kill_leftovers(self.store, self.others, now_ms, lease_s):
            self.log("leftovers", f"killed {killed} process(es) of lost jobs", important=True)
        spared = [self.id, *live_local(self.others, now_ms, lease_s)]
        for job_id in self.store.reap([r.id for r in dead], exclude=spared):
            self.log("lost", f"recovered {job_id}: its runner was lost", important=True, job=job_id)
            self.next_claim_at = 0.0  # its slot or lock may let a job start now
        gone = {r.id for r in dead}  # unregistered now, by this runner or another
        self.others = [r for r in self.others if r.id not in gone]

    def _expire(self) -> None:
        """Delete finished jobs older than their retention (SPEC 9.4), in small batches, and
        the counts of attempts that ended longer ago than any read looks back."""
        now_ms = self.store.clock.now_ms()
        # Rows are per minute: cutting more than once a minute deletes nothing, and would add
        # a transaction to an idle runner's every retention pass.
        cut_minute = (now_ms - FINISHED_MINUTES_KEPT_MS) // 60_000
        if cut_minute != self.forgot_before_minute:
            self.store.forget_finished_minutes(cut_minute * 60_000)
            self.forgot_before_minute = cut_minute
        for states, key in (([COMPLETED, CANCELLED], "retain_completed"), ([DEAD], "retain_dead")):
            keep_s = float(self.config[key])
            if keep_s <= 0:
                continue
            before_ms = now_ms - round(keep_s * 1000)
            for _ in range(EXPIRY_MAX_BATCHES):
                if self.store.expire(states, before_ms, EXPIRY_BATCH) < EXPIRY_BATCH:
                    break

    def _sync_output(self, now: float) -> None:
        """Copy the output of long-running jobs to the store, for `logs --follow` anywhere."""
        limit = int(self.config["output_limit"])
        for attempt in self.running.values():
            if now - attempt.started_mono < TICK_S or attempt.pid is None:
                continue
            size = executor.output_size(attempt)
            if size > limit + TRIM_SLACK:
                executor.trim(attempt, limit)
            if size != attempt.synced_size:
                attempt.synced_size = size
                claim = attempt.claim
                tail = executor.tail(attempt, limit)
                dropped = max(0, size - len(tail))
                self.store.save_output(self.id, claim.id, claim.token, tail, dropped)
