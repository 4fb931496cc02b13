"""Chaos with cancels: while runners are SIGKILLed and replaced, running jobs are cancelled,
requeued (at once, while their cancelled attempt still dies, or later) and retried from the
DLQ. Some jobs trap SIGTERM and take a while to die. At the end no two attempts of a job lived
at once, no two holders of a lock, no more than LIMIT jobs of the limited queue, and every job
is in the state that what was done to it calls for.

`QUEUECTL_CANCEL_CHAOS_SECONDS` sets how long the chaos goes on (default 8).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

from queuectl import Queue
from queuectl.errors import ConflictError
from tests.reliability.conftest import (
    Audit,
    Runners,
    append_line,
    audit,
    job_command,
    kill_runner,
    peak,
)
from tests.support.runners import GATED, alive, read_pid, tagged, wait_until

SECONDS = float(os.environ.get("QUEUECTL_CANCEL_CHAOS_SECONDS", "8"))
JOBS = 120
RUNNERS = 3
WORKERS = 3
LIMITED, LIMIT = "limited", 2  # every 3rd job goes to this queue, limited to LIMIT at once
LOCK = "chaos"  # every 4th job holds this lock
CANCEL_EVERY = 0.15  # seconds between two cancels of a running job


def job_fields(n: int) -> dict[str, object]:
    """Job n's queue and lock; every 5th fails with exit 3, not retried (to the DLQ), until
    the test lets it succeed; a runner kill costs any job an attempt, retried."""
    return {
        **({"queue": LIMITED} if n % 3 == 0 else {}),
        **({"lock": LOCK} if n % 4 == 0 else {}),
        "max_retries": 20,  # enough for every runner kill to cost an attempt
        **({"no_retry_exit_codes": [3]} if n % 5 == 0 else {}),
    }


def command(log: Path, folder: Path, n: int) -> str:
    """Job n: half of the jobs take a while to die of SIGTERM (under the runner's kill grace)."""
    on_term = "sleep 0.3" if n % 2 else "true"
    run = job_command(log, f"sleep 0.{2 + n % 3}", on_term=on_term)
    return f"{run}; [ -e {folder}/ok-$QUEUECTL_JOB_ID ] || exit 3" if n % 5 == 0 else run


def end_of(result: Audit, job: str, after_ns: int) -> int | None:
    """When the run of `job` that started before `after_ns` and was still running then ended
    (None: no such run)."""
    for run in result.by_job.get(job, []):
        if run.start_ns < after_ns and (run.end_ns is None or run.end_ns > after_ns):
            return run.end_ns
    return None


def test_cancel_requeue_and_retry_through_chaos_hold_attempts_locks_and_limits(
    target: str, backend: str, runners: Runners, tmp_path: Path, tag: str
) -> None:
    rng = random.Random()
    log = tmp_path / "runs.log"
    queue = Queue(target)
    queue.set_config("backoff_base", 1)
    queue.set_config("backoff_max", 1)
    queue.set_queue(LIMITED, concurrency=LIMIT)
    ids = [f"job-{n}" for n in range(JOBS)]
    fields = {job_id: job_fields(n) for n, job_id in enumerate(ids)}
    batches = [ids[n : n + 20] for n in range(0, JOBS, 20)]
    live = [runners.start(target, WORKERS) for _ in range(RUNNERS)]

    last: dict[str, str] = {}  # job: what was last done to it ("cancel" or "requeue")
    requeued_at: list[tuple[str, int]] = []  # (job, ns) of each requeue of a cancelled job
    cancelled: list[str] = []  # cancelled, not requeued since
    retried = kills = 0
    began = time.monotonic()
    end = began + SECONDS
    feed_every = SECONDS * 0.6 / len(batches)
    next_feed = began
    next_kill = began + rng.uniform(0.5, 1.5)
    next_cancel = began + CANCEL_EVERY
    while batches or time.monotonic() < end:
        now = time.monotonic()
        if batches and now >= next_feed:
            queue.enqueue_many(
                [
                    {"id": i, "command": command(log, tmp_path, ids.index(i)), **fields[i]}
                    for i in batches.pop(0)
                ]
            )
            next_feed += feed_every
        elif now >= next_kill:
            victim = rng.choice(live)
            kill_runner(victim, log)
            live.remove(victim)
            kills += 1
            live.append(runners.start(target, WORKERS))
            next_kill = time.monotonic() + rng.uniform(0.8, 1.6)
        elif now >= next_cancel:
            next_cancel = now + CANCEL_EVERY
            running = [job.id for job in queue.list(state="processing")]
            if running:
                victim_id = rng.choice(running)
                try:
                    queue.cancel(victim_id)
                except ConflictError:  # it ended meanwhile
                    pass
                else:
                    last[victim_id] = "cancel"
                    cancelled.append(victim_id)
            # Half of the requeues come at once, while the cancelled attempt still dies.
            if cancelled and rng.random() < 0.6:
                again = cancelled.pop(rng.randrange(len(cancelled)) if rng.random() < 0.5 else -1)
                requeued_at.append((again, time.time_ns()))
                assert queue.requeue(again) == [again]
                last[again] = "requeue"
            dead = [job.id for job in queue.list(state="dead")]
            if dead and rng.random() < 0.5:
                lucky = rng.choice(dead)
                (tmp_path / f"ok-{lucky}").touch()
                assert queue.retry(lucky) == [lucky]
                last[lucky] = "retry"
                retried += 1
        else:
            time.sleep(max(0.0, min(next_kill, next_cancel, end) - now))
    append_line(log, f"# chaos over after {time.monotonic() - began:.1f}s")

    runners.stop_all(timeout=60)  # graceful: they finish what they run
    final = runners.start(target, WORKERS)

    def settled() -> bool:
        counts = queue.status()["counts"]
        return counts["completed"] + counts["dead"] + counts["cancelled"] == JOBS

    try:
        wait_until(settled, 60, "the final runner to settle every job", step=0.2)
    except AssertionError as exc:
        stuck = queue.list(state=["pending", "processing", "failed"], limit=None)
        explained = [(job.id, job.state, queue.explain(job.id)) for job in stuck[:5]]
        raise AssertionError(f"{exc}; {len(stuck)} unsettled, first: {explained}") from None
    runners.stop_all()
    assert final.process.returncode == 0

    result = audit(log, rerun=True)
    problems = list(result.problems)
    jobs = {job.id: job for job in queue.list(limit=None)}
    assert set(jobs) == set(ids)
    expected = {}
    for n, job_id in enumerate(ids):
        succeeds = n % 5 or (tmp_path / f"ok-{job_id}").exists()
        want = (
            "cancelled" if last.get(job_id) == "cancel" else ("completed" if succeeds else "dead")
        )
        expected[job_id] = want
        job = jobs[job_id]
        if job.state != want:
            problems.append(f"{job_id} is {job.state} ({job.last_error}), not {want}")
        elif want == "completed" and result.by_job[job_id][-1].end_pos is None:
            problems.append(f"{job_id} completed, but its last run is not logged as ended")
    counts = {s: n for s, n in queue.status()["counts"].items() if n}
    if counts != dict(Counter(expected.values())):
        problems.append(f"counts {counts}, expected {dict(Counter(expected.values()))}")

    # Runs cut by a runner's kill end at the K line or when the store recovered them.
    recovered = {}
    for run in result.runs:
        if run.end_ns is None:
            ended = [
                a.finished_at_ms or 0
                for a in queue.history(run.job)
                if a.started_at_ms * 1_000_000 <= run.start_ns
            ]
            recovered[run.job, run.pgid] = ended[-1] if ended else 0
    limited_peak = peak(
        [r for r in result.runs if fields[r.job].get("queue") == LIMITED], result, recovered
    )
    lock_peak = peak([r for r in result.runs if "lock" in fields[r.job]], result, recovered)
    if limited_peak > LIMIT:
        problems.append(f"queue {LIMITED!r} ran {limited_peak} jobs at once, over its {LIMIT}")
    if lock_peak > 1:
        problems.append(f"{lock_peak} jobs holding lock {LOCK!r} ran at once")
    # The cancelled attempts whose job was requeued before they were gone.
    while_dying = sum(1 for job, ns in requeued_at if end_of(result, job, ns) is not None)
    queue.close()
    print(
        f"cancel chaos ({backend}): {len(result.runs)} runs, {kills} kills, "
        f"{sum(1 for v in last.values() if v == 'cancel')} left cancelled, "
        f"{len(requeued_at)} requeued ({while_dying} while dying), {retried} retried, "
        f"peaks {limited_peak}/{lock_peak}, final {dict(Counter(expected.values()))}"
    )

    assert problems[:20] == []
    assert len(result.by_job) == JOBS
    assert (kills >= 1, while_dying >= 1, retried >= 1) == (True, True, True)
    assert (limited_peak, lock_peak) == (LIMIT, 1)
    assert tagged(tag) == []


def test_a_job_that_ends_by_itself_as_it_is_cancelled_frees_its_lock(
    target: str, runners: Runners, tmp_path: Path
) -> None:
    """Its result comes back fenced ('no longer ours'); its runner still says it is gone."""
    queue = Queue(target)
    runner = runners.start(target, 2)
    pid_file, go = tmp_path / "pid", tmp_path / "go"
    gated = GATED.format(runs=tmp_path / "runs", go=go)
    queue.enqueue(f"echo $$ > {pid_file}; {gated}", id="first", lock="L")
    pid = read_pid(pid_file)
    # The runner is stopped while the job is cancelled and ends on its own: it sees both at once.
    runner.send(signal.SIGSTOP)
    try:
        queue.cancel("first")
        go.touch()
        wait_until(lambda: not alive(pid), 10, "the cancelled job to end by itself")
    finally:
        runner.send(signal.SIGCONT)
    queue.enqueue("true", id="second", lock="L")
    wait_until(
        lambda: queue.get("second").state == "completed",
        10,
        f"the next holder of the lock to run: {queue.explain('second')['message']}",
        step=0.1,
    )
    assert queue.get("first").state == "cancelled"
    queue.close()


def test_a_cancelled_attempt_of_a_runner_gone_unregistered_is_let_go_when_its_lease_expires(
    target: str, runners: Runners
) -> None:
    """Its lease, once expired, is let go by a live runner though nothing else expired."""
    queue = Queue(target)
    queue.enqueue("true", id="first", lock="L")
    (claim,) = queue._store.finish_and_claim("gone", [], 1, None, 1.0).claims
    assert claim.id == "first"
    queue.cancel("first")
    runners.start(target, 2)
    queue.enqueue("true", id="second", lock="L")
    wait_until(
        lambda: queue.get("second").state == "completed",
        15,
        f"the next holder of the lock to run: {queue.explain('second')['message']}",
        step=0.1,
    )
    queue.close()
