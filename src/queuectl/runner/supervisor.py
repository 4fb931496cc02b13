"""The runner process: one loop that claims jobs, runs them on its worker slots and keeps leases.

Words: a runner (`queuectl worker start`) is one process, driven by its Supervisor; it has
`count` workers, here slots (see Slots); each run of a job on a slot is an Attempt.

Everything happens on the main thread: a selector waits on the store's wakeup listener and on
the signal wakeup fd (SIGCHLD, SIGINT, SIGTERM, SIGHUP), with a timeout set by the nearest timer
(a job's timeout, the next delayed job, a maintenance task). Finished attempts are settled and
new jobs claimed in one transaction.

Crash behaviour: a watchdog process holds a pipe to the runner and SIGKILLs the recorded
process groups when the runner dies; the runner's jobs are then recovered by any other runner,
at once on this host (the pid is gone) or after the lease elsewhere.
"""

from __future__ import annotations

import contextlib
import errno
import os
import selectors
import shutil
import signal
import tempfile
import time
from typing import Any

from queuectl.errors import InvalidInputError, NewerSchemaError, StoreError
from queuectl.lifecycle import Fence, Outcome, Settlement
from queuectl.models import COMPLETED, DEAD, limits_mask
from queuectl.runner import executor
from queuectl.runner.executor import Attempt
from queuectl.runner.liveness import host_name, process_started
from queuectl.runner.log import EventLog
from queuectl.runner.maintenance import READ_MIN_S, TICK_S, maintenance_of
from queuectl.runner.slots import Slots
from queuectl.runner.tree import RUNNER_ENV, open_tree
from queuectl.runner.watchdog import Watchdog
from queuectl.store import Claim, Runner, Store, open_store

POLL_S = 2.0  # the fallback poll for work, for a wakeup that was lost (made by the store read)
#: Tests lengthen the poll, so that only a wakeup can explain a prompt start.
POLL_ENV = "QUEUECTL_POLL_S"
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
        tags: list[str] | None = None,
    ) -> None:
        self.target = target
        self.tags = list(tags or [])  # a job is claimed only if it requires none but these
        self.queues = queues
        self.grace_s = grace_s
        self.log = log or EventLog()
        self.poll_s = poll_s
        self.id = f"{host_name()}-{os.getpid()}-{os.urandom(2).hex()}"
        self.base_env = dict(os.environ)
        self.base_env[RUNNER_ENV] = self.id  # which of this host's runners a process is for
        if target is not None:  # `queuectl progress` inside a job reports to this store
            self.base_env["QUEUECTL_DB"] = target
        self.progress_dir: str | None = None  # where jobs' progress files are (see ProgressFiles)
        self.slots = Slots(count)
        self.signals: list[int] = []
        # Stopping: since when, why, and until when the running jobs are waited for.
        self.stopping = False
        self.stop_by_request = False  # stopping because the store asked, and only for that
        self.stop_at: float | None = None  # when the jobs still running are killed and released
        self.give_up_at = float("inf")  # when a stopping runner stops waiting for the store
        self.exit_code = 0
        # Claiming: whether a claim may find work now, else when one is due unasked.
        self.may_have_work = True
        self.next_claim_at = 0.0
        # Results: what the store has not been told yet (it may be down).
        self.unsent: list[Outcome] = []
        self.unreleased: list[tuple[str, int]] = []  # stopped by shutdown: (job id, token)
        self.store_error: str | None = None
        self.store_retry_at = 0.0
        # What the store said.
        self.store: Store
        self.config: dict[str, float] = {}
        self.others: list[Runner] = []  # the other runners, as last read
        self.maintenance, self.read = maintenance_of(self)

    # -- life of the runner

    def run(self) -> int:
        """Serve until stopped; 0 after a graceful stop."""
        self.store = open_store(self.target, durable=False)
        self.store.preload()
        self.progress_dir = tempfile.mkdtemp(prefix="queuectl-progress-")
        self.ledger = self.store.ledger()  # what this runner's claims hold between exchanges
        self.config = self.store.config()
        self.listener: Any = self.store.listener(self.id)
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        previous_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        handlers = {
            signum: signal.signal(signum, self._on_signal)
            # SIGHUP (its terminal closed, an SSH session dropped) is a graceful stop too.
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
        }
        self.watchdog = Watchdog(self.log, self.id)
        self.tree = open_tree({self.watchdog.pid})
        executor.probe(self.tree)
        selector = self.selector = selectors.DefaultSelector()
        selector.register(self.wake_r, selectors.EVENT_READ, "signal")
        if self.listener is not None:
            selector.register(self.listener, selectors.EVENT_READ, "wakeup")
        where = ", ".join(self.queues) if self.queues else "every queue"
        count = self.slots.count
        self.log(
            "runner_started",
            f"runner {self.id} started: {count} worker{'s' if count != 1 else ''} "
            f"on {where} ({self.store.describe()['target']})",
            important=True,
            runner=self.id,
            workers=count,
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
            self._loop()
        finally:
            for attempt in list(self.slots.running.values()):
                executor.signal_group(attempt, signal.SIGKILL)
            self.tree.close()
            with contextlib.suppress(Exception):
                self.store.unregister_runner(self.id)
            self.watchdog.close()
            selector.close()
            signal.set_wakeup_fd(previous_fd)
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            os.close(self.wake_r)
            os.close(wake_w)
            if self.listener is not None:
                self.listener.close()
            self.store.close()
            shutil.rmtree(self.progress_dir, ignore_errors=True)
        self.log("runner_stopped", f"runner {self.id} stopped", important=True, runner=self.id)
        return self.exit_code

    def _loop(self) -> None:
        """The runner's steps, each turn; then sleep until a signal, a wakeup, output or a
        timer."""
        while True:
            now = time.monotonic()
            self._take_signals(now)
            self._collect_finished()
            self._enforce_deadlines(now)
            if self.store_error is None or now >= self.store_retry_at:
                try:
                    claims = self._settle_and_claim(now)
                    self._spawn(claims)
                    self.maintenance.run_due(now)
                except NewerSchemaError as exc:
                    self.newer_schema(now, exc)
                    self._store_lost(now, exc)
                except StoreError as exc:
                    self._store_lost(now, exc)
                except OSError as exc:
                    if exc.errno not in (errno.EMFILE, errno.ENFILE):
                        raise
                    # Out of descriptors (what a call opens: a socket, a file to import):
                    # running jobs go on, and once some end the store is tried again.
                    self._store_lost(now, StoreError(f"out of file descriptors ({exc})"))
                else:
                    self._store_back()
            if self._done(now):
                return
            self.tree.poll(time.monotonic())
            self.watchdog.flush(self.tree)
            self._wait(time.monotonic())

    def _done(self, now: float) -> bool:
        """Whether a stopping runner may exit: nothing runs and the store knows every result,
        or the store stayed unreachable too long."""
        if not self.stopping or self.slots.running:
            return False
        if not self.unsent and not self.unreleased:
            return True
        if now >= self.give_up_at:
            self.log(
                "gave_up",
                "the store is still unreachable: exiting; its jobs will be "
                "recovered as worker lost",
                important=True,
            )
            self.exit_code = 1
            return True
        return False

    def _wait(self, now: float) -> None:
        """Sleep until the nearest timer, or until something happens: empty a job's output
        pipe, take a signal, or note a wakeup from the store."""
        for key, _ in self.selector.select(self._timeout(now)):
            if isinstance(key.data, Attempt):
                self._pump(key.data)
            elif key.data == "signal":
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.wake_r, 512):
                        pass
            else:
                self.listener.drain()
                self.may_have_work = True
                self.maintenance.sooner(self.read, self.read.last + READ_MIN_S)

    def _timeout(self, now: float) -> float:
        timers = []
        for attempt in self.slots.running.values():
            if attempt.kill_at is not None:
                timers.append(attempt.kill_at)
            else:
                if attempt.deadline is not None:
                    timers.append(attempt.deadline)
                if attempt.silence_s is not None:
                    timers.append(attempt.last_output + attempt.silence_s)
        if self.stop_at is not None:
            timers.append(self.stop_at)
        if (tree_at := self.tree.next_due(now)) is not None:
            timers.append(tree_at)
        if self.store_error is not None:
            timers.append(self.store_retry_at)  # nothing else needs the store until it is back
            if self.stopping and not self.slots.running:
                timers.append(self.give_up_at)
            return max(0.0, min(timers) - now)
        timers.append(self.maintenance.due)
        if not self.stopping and self.slots.free:
            timers.append(self.next_claim_at)
        return max(0.0, min(timers) - now)

    # -- registration and the store

    def _register(self) -> None:
        self.store.register_runner(
            Runner(
                id=self.id,
                host=host_name(),
                pid=os.getpid(),
                workers=self.slots.count,
                queues=self.queues,
                started_at_ms=0,  # stamped by the store's clock
                heartbeat_at_ms=0,
                pid_started=process_started(os.getpid()),
                enforces=self.tree.limiter.enforces,
                tags=self.tags,
            )
        )

    def reregister(self) -> None:
        self.log(
            "reregistered", "this runner was taken for dead; registering again", important=True
        )
        self._register()

    def _store_lost(self, now: float, exc: StoreError) -> None:
        """Note an unreachable store (said once) and when to try it again; running jobs go on."""
        if self.store_error is None:
            self.log(
                "store_unreachable",
                f"cannot use the store: {exc}; running jobs go on, their results are kept "
                "until it is back, no new job is claimed",
                important=True,
            )
        self.store_error = str(exc)
        self.store_retry_at = now + STORE_RETRY_S

    def _store_back(self) -> None:
        if self.store_error is not None:
            self.log("store_back", "the store is reachable again", important=True)
            self.store_error = None

    # -- signals and stopping

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def _take_signals(self, now: float) -> None:
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
                self.begin_stop(now, f"{name} received")

    def stop_asked(self, now: float, asked: bool) -> None:
        """Follow the store's stop request: begin stopping, or go on serving once it is
        withdrawn (`worker stop --cancel`) while this runner still drains. A signal's stop
        is not the store's to withdraw."""
        if asked:
            if not self.stopping:
                self.begin_stop(now, "stop requested")
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

    def newer_schema(self, now: float, exc: NewerSchemaError) -> None:
        """A newer queuectl migrated the store: its rules (limits, locks, fences) are not
        known here, so claim nothing more; the running jobs end as in any stop. Whichever of
        the exchange or the heartbeat meets it first."""
        if self.stopping:
            return
        self.log("newer_schema", f"{exc}: stopping", important=True)
        self.exit_code = 1
        self.begin_stop(now, "the store was upgraded by a newer queuectl")

    def begin_stop(self, now: float, why: str) -> None:
        if self.stopping:
            return
        self.stopping = True
        if self.grace_s is not None:
            self.stop_at = now + self.grace_s
        self.give_up_at = now + STORE_GIVE_UP_S
        grace = "" if self.grace_s is None else f", for at most {self.grace_s:g}s"
        self.log(
            "stopping",
            f"{why}: stopping; waiting for {len(self.slots.running)} running job(s){grace}",
            important=True,
        )

    # -- attempts

    def _collect_finished(self) -> None:
        """Turn attempts whose process ended into results to write, freeing their slots."""
        for attempt in list(self.slots.running.values()):
            if attempt.poll():
                self._pump(attempt)  # what it wrote last; a grandchild's later writes are lost
                self._stop_reading(attempt)
                executor.end(attempt)  # what the shell left behind dies with the job
                if attempt.pgid is not None:
                    self.watchdog.watch(f"-{attempt.pgid}")
                self.watchdog.watch(f"-a{attempt.claim.id}:{attempt.claim.token}")
                self.slots.remove(attempt)
                if attempt.progress_seen[0]:  # it wrote progress reports: its file goes too
                    with contextlib.suppress(OSError):
                        os.unlink(attempt.progress_file or "")
                self._result(attempt)

    def _enforce_deadlines(self, now: float) -> None:
        """Kill what must die: jobs past their timeout, past a stop's grace, or past the
        grace between their SIGTERM and SIGKILL."""
        for attempt in self.slots.running.values():
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
            elif attempt.silence_s is not None and now >= attempt.last_output + attempt.silence_s:
                self._silenced(attempt, now)

    def _silenced(self, attempt: Attempt, now: float) -> None:
        """Kill an attempt silent for its silence timeout, unless output waits in its pipe
        (written since the loop last emptied it)."""
        self._pump(attempt)
        if now < attempt.last_output + (attempt.silence_s or 0):
            return
        executor.terminate(attempt, now, f"no output for {attempt.silence_s:g}s")
        self.log(
            "timeout",
            f"timed out {attempt.claim.id}: no output for {attempt.silence_s:g}s",
            job=attempt.claim.id,
        )

    def check_owned(self, now: float, owned: dict[str, int]) -> None:
        """Kill the jobs that are no longer ours; give back those leased to us but not run.
        `owned`: the claim token of each job running under this runner, as the store says."""
        for (job_id, token), attempt in self.slots.running.items():
            if owned.get(job_id) != token and not attempt.abandoned:
                attempt.abandoned = True
                executor.terminate(attempt, now, None)
                self.log("abandoned", f"killing {job_id}: cancelled or no longer ours", job=job_id)
        # A claim whose commit was acknowledged only after a reconnect (the store replayed it)
        # leases jobs this runner never started: give them back rather than keep them forever.
        known = {(o.job_id, o.token) for o in self.unsent} | set(self.unreleased)
        for job_id, token in owned.items():
            if (job_id, token) not in self.slots.running and (job_id, token) not in known:
                self.store.release(self.id, job_id, token, self.ledger)
                self.log(
                    "orphan",
                    f"released {job_id}: leased to this runner but never started",
                    important=True,
                    job=job_id,
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
        fence = None
        if claim.max_retries is not None:
            fence = Fence(claim.attempt, claim.token, claim.max_retries, claim.no_retry_exit_codes)
        outcome = Outcome(
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
        if attempt.abandoned:
            # Cancelled (or lost): no settlement follows, but a cancelled attempt's history
            # keeps what it printed; the store refuses the output of an attempt not ours.
            # Best effort: with the store unreachable, that output is lost, not the turn.
            with contextlib.suppress(StoreError):
                self.store.save_output(self.id, claim.id, claim.token, output, dropped)
            # Its processes are gone: the outcome says so, and lets go of what they held.
            outcome = outcome.gone()
        self.unsent.append(outcome)
        executor.close(attempt)

    def _settle_and_claim(self, now: float) -> list[Claim]:
        """Write results and claim new jobs, in one transaction; the jobs claimed."""
        while self.unreleased:
            job_id, token = self.unreleased[0]
            self.store.release(self.id, job_id, token, self.ledger)
            self.unreleased.pop(0)
            self.log("released", f"released {job_id}: back to pending", job=job_id)
        outcomes = self.unsent
        free = self.slots.free
        wants_work = outcomes or self.may_have_work or now >= self.next_claim_at
        want = free if free > 0 and not self.stopping and wants_work else 0
        if not outcomes and not want:
            return []
        exchange = self.store.finish_and_claim(
            self.id,
            outcomes,
            want,
            self.queues,
            float(self.config["lease_seconds"]),
            self.ledger,
            enforces=limits_mask(self.tree.limiter.enforces),
            tags=self.tags,
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
                    self.unsent.append(outcome.gone())
        if want:
            self.may_have_work = len(exchange.claims) == want
            if not self.may_have_work:
                self.next_claim_at = self._next_claim_time(exchange.next_due_ms)
        if exchange.claims:
            self.maintenance.sooner(self.read, now + TICK_S)  # busy now: see StoreRead
        return exchange.claims

    def _next_claim_time(self, due_ms: int | None) -> float:
        """When to claim again unasked: when the next delayed job falls due (as the claim saw
        it). Work that comes otherwise wakes this runner; a lost wakeup is the poll's, made by
        the store read."""
        if due_ms is None:
            return float("inf")
        # From the instant of this clock reading, plus a millisecond for its rounding: a claim
        # a hair early misses the job, and then only the poll finds it.
        wait_s = (due_ms - self.store.clock.now_ms() + 1) / 1000
        return time.monotonic() + max(0.0, wait_s)

    def _spawn(self, claims: list[Claim]) -> None:
        """Start the jobs claimed, each on a free slot."""
        for claim in claims:
            # Told before the spawn: a crash between the spawn and the next flush must take
            # this job, and whatever it started meanwhile, along.
            self.watchdog.watch(f"+a{claim.id}:{claim.token}")
            self.watchdog.flush(self.tree)
            attempt = executor.start(
                claim,
                self.base_env,
                float(self.config["job_timeout"]),
                self.tree,
                self.slots.take(),
                self.progress_dir,
            )
            self.slots.add(attempt)
            if attempt.pipe is not None:
                self.selector.register(attempt.pipe, selectors.EVENT_READ, attempt)
            if attempt.pgid is not None:
                self.watchdog.watch(f"+{attempt.pgid}")
            self.watchdog.flush(self.tree)  # before anything else: a crash now must take it along
            self.log(
                "started",
                f"started {claim.id} (attempt {claim.attempt}): {claim.command[:200]}",
                job=claim.id,
                attempt=claim.attempt,
                queue=claim.queue,
            )

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

    # -- output

    def _pump(self, attempt: Attempt) -> None:
        """Empty the attempt's output pipe into its file, keeping about output_limit + slack."""
        limit = int(self.config["output_limit"])
        if attempt.pipe is not None and not executor.pump(attempt, limit, executor.TRIM_SLACK):
            self._stop_reading(attempt)

    def _stop_reading(self, attempt: Attempt) -> None:
        if attempt.pipe is not None:
            self.selector.unregister(attempt.pipe)
            executor.close_pipe(attempt)
