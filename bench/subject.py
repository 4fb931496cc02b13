"""Measurements of queuectl itself: drain, latency, enqueue rates, idle CPU and scale.

Each runner is the real thing: `queuectl worker start --count W --quiet` in a subprocess,
waited for until it is registered, stopped with SIGTERM afterwards. The measurements that
`--against` compares take a subject (an installed queuectl, bench.common.Subject) and leave
what touches its store to its own client (bench/probe.py).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.common import (
    CHILD_ENV,
    CLK_TCK,
    HERE,
    Subject,
    TimedOut,
    child_pids,
    cpu_ticks,
    median_walls_s,
    stop_process,
    summary_ms,
)
from bench.stores import Scratch, pg_transactions


@contextmanager
def runner(
    target: str,
    workers: int,
    log_path: Path,
    host: str | None = None,
    subject: Subject = HERE,
) -> Iterator[subprocess.Popen[bytes]]:
    """A runner of `subject` with `workers` slots, registered in the store before this yields;
    `host`: the host name it registers under (runners of several hosts on one machine)."""
    env = CHILD_ENV if host is None else {**CHILD_ENV, "QUEUECTL_HOSTNAME": host}
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [
                subject.queuectl,
                "--db",
                target,
                "worker",
                "start",
                "--count",
                str(workers),
                "--quiet",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
        )
    try:
        up = subject.probe("runner-up", target, process.pid, 30)
        if not up or process.poll() is not None:
            raise RuntimeError(f"the runner did not start; see {log_path}")
        yield process
    finally:
        stop_process(process)


def drain(
    target: str,
    n: int,
    workers: int,
    scratch: Scratch,
    timeout_s: float,
    prepare: Callable[[str], None] | None = None,
    subject: Subject = HERE,
) -> float:
    """Seconds from the bulk enqueue of N `true` jobs into an idle runner until all completed;
    `prepare` changes the store first (a concurrency limit, no count triggers)."""
    if prepare:
        prepare(target)
    with runner(target, workers, scratch.file("runner", ".log"), subject=subject):
        return timed_drain(subject, target, n, timeout_s)


def timed_drain(subject: Subject, target: str, n: int, timeout_s: float) -> float:
    """Seconds from the bulk enqueue of N `true` jobs into the runners already up until all
    completed, timed by the subject's own client."""
    found = subject.probe("drain", target, n, timeout_s, timeout_s=timeout_s + 60)
    if "timeout" in found:
        raise TimedOut(found["done"], found["total"], timeout_s)
    return float(found["seconds"])


def drain_hosts(
    target: str,
    n: int,
    runners: int,
    workers: int,
    scratch: Scratch,
    timeout_s: float,
    subject: Subject = HERE,
) -> float:
    """The drain of N `true` jobs by `runners` runners of `workers` slots each, registered
    under distinct host names, sharing one store (as several machines would)."""
    with ExitStack() as stack:
        for i in range(runners):
            log = scratch.file(f"runner-host{i}", ".log")
            stack.enter_context(
                runner(target, workers, log, host=f"bench-host-{i}", subject=subject)
            )
        return timed_drain(subject, target, n, timeout_s)


def flow(kind: str, n: int, workers: int, scratch: Scratch, timeout_s: float) -> dict[str, Any]:
    """The drain with a concurrency limit of W on the queue, over the drain with
    none."""

    def limit(target: str) -> None:
        from queuectl import Queue

        with Queue(target) as queue:
            queue.set_queue("default", concurrency=workers)

    return changed_drain(kind, n, workers, scratch, timeout_s, limit)


def array_flow(
    kind: str, n: int, workers: int, scratch: Scratch, timeout_s: float
) -> dict[str, Any]:
    """The drain of an array of N `true` jobs limited to W at once (`enqueue --array 1-N%W`),
    over the drain of N `true` jobs in a queue limited to W: best of two rounds each,
    alternated. The batch's limit is flow control again, held by the same claims."""
    from bench.stores import fresh_store
    from queuectl import Queue

    best: dict[bool, float] = {}
    for _ in range(2):
        for arrayed in (False, True):
            with fresh_store(kind, scratch) as target, Queue(target) as queue:
                if not arrayed:
                    queue.set_queue("default", concurrency=workers)
                with runner(target, workers, scratch.file("runner", ".log")):
                    spec = f"1-{n}%{workers}" if arrayed else None
                    seconds = _drain_here(queue, n, timeout_s, spec)
            best[arrayed] = min(best.get(arrayed, seconds), seconds)
    return {
        "workers": workers,
        "base_s": round(best[False], 4),
        "changed_s": round(best[True], 4),
        "ratio": round(best[True] / best[False], 3),
    }


def _drain_here(queue: Any, n: int, timeout_s: float, array: str | None) -> float:
    """probe.py's drain, in this process: N `true` jobs enqueued in one call (as an array of
    that SPEC if given), seconds until each completed, looked up one by one in order."""
    started = time.perf_counter()
    if array is None:
        ids = [job.id for job in queue.enqueue_many([{"command": "true"} for _ in range(n)])]
    else:
        base, _ = queue.enqueue_array(array, {"command": "true"})
        ids = [f"{base}.{index}" for index in range(1, n + 1)]
    done = 0
    while True:
        while done < n and queue.get(ids[done]).state == "completed":
            done += 1
        elapsed = time.perf_counter() - started
        if done == n:
            return elapsed
        if elapsed > timeout_s:
            raise TimedOut(done, n, timeout_s)
        time.sleep(0.01)


def counters(kind: str, n: int, workers: int, scratch: Scratch, timeout_s: float) -> dict[str, Any]:
    """The drain without the triggers that count state changes, over the drain with them
    (exact counts must not make runners wait on each other)."""
    from bench.stores import drop_count_triggers

    return changed_drain(
        kind, n, workers, scratch, timeout_s, lambda t: drop_count_triggers(kind, t)
    )


def changed_drain(
    kind: str,
    n: int,
    workers: int,
    scratch: Scratch,
    timeout_s: float,
    change: Callable[[str], None],
) -> dict[str, Any]:
    """The drain of a store `change`d over that of a fresh one: best of two rounds each,
    alternated so a noisy spell hits both alike."""
    from bench.stores import fresh_store

    best: dict[bool, float] = {}
    for _ in range(2):
        for changed in (False, True):
            with fresh_store(kind, scratch) as target:
                seconds = drain(target, n, workers, scratch, timeout_s, change if changed else None)
            best[changed] = min(best.get(changed, seconds), seconds)
    return {
        "workers": workers,
        "base_s": round(best[False], 4),
        "changed_s": round(best[True], 4),
        "ratio": round(best[True] / best[False], 3),
    }


def one_by_one(
    target: str,
    samples: int,
    pause_s: float,
    scratch: Scratch,
    subject: Subject = HERE,
    cli: bool = False,
) -> dict[str, list[float]]:
    """`true` jobs enqueued one at a time into an idle runner (2 workers), through
    `Queue.enqueue` or, with `cli`, through `queuectl enqueue`: each job's enqueue-to-start
    (`start_ms`: started_at - created_at) and own wall (`wall_ms`: finished_at - started_at)."""
    with runner(target, 2, scratch.file("runner", ".log"), subject=subject):
        args = [target, samples, pause_s, *([subject.queuectl] if cli else [])]
        found: dict[str, list[float]] = subject.probe("one-by-one", *args)
    return found


def latency(
    target: str,
    samples: int,
    pause_s: float,
    scratch: Scratch,
    subject: Subject = HERE,
    cli: bool = False,
) -> dict[str, Any]:
    """Enqueue-to-start of jobs enqueued one at a time into an idle runner, with the same
    jobs' own wall under `wall` (see one_by_one)."""
    found = one_by_one(target, samples, pause_s, scratch, subject, cli)
    return {**summary_ms(found["start_ms"]), "wall": summary_ms(found["wall_ms"])}


def enqueue_many_rate(target: str, n: int) -> dict[str, Any]:
    """Jobs per second of one `Queue.enqueue_many` call of N dicts (validation included)."""
    from queuectl import Queue

    jobs = [{"command": "true"} for _ in range(n)]
    with Queue(target) as queue:
        started = time.perf_counter()
        queue.enqueue_many(jobs)
        seconds = time.perf_counter() - started
    return {"jobs": n, "seconds": round(seconds, 4), "per_s": round(n / seconds)}


def enqueue_file_rate(target: str, n: int, subject: Subject = HERE) -> dict[str, Any]:
    """Jobs per second of `queuectl enqueue --file -` fed N JSON Lines (process start included)."""
    lines = "".join('{"command": "true"}\n' for _ in range(n)).encode()
    started = time.perf_counter()
    subprocess.run(
        [subject.queuectl, "--db", target, "enqueue", "--file", "-"],
        input=lines,
        stdout=subprocess.DEVNULL,
        check=True,
        env=CHILD_ENV,
    )
    seconds = time.perf_counter() - started
    return {"jobs": n, "seconds": round(seconds, 4), "per_s": round(n / seconds)}


def single_enqueue(target: str, repeat: int, subject: Subject = HERE) -> dict[str, Any]:
    """Median wall time of one `queuectl enqueue` beside `python -c pass` of the same interpreter,
    and of `import click` alone: the floor of any CLI parsed by click."""
    enqueue_s, python_s, click_s = median_walls_s(
        [
            [subject.queuectl, "--db", target, "enqueue", "--command", "true"],
            [subject.python, "-c", "pass"],
            [subject.python, "-c", "import click"],
        ],
        repeat,
    )
    return {
        "enqueue_ms": round(enqueue_s * 1000, 1),
        "python_pass_ms": round(python_s * 1000, 1),
        "ratio": round(enqueue_s / python_s, 2),
        "import_click_ms": round(click_s * 1000, 1),
        "import_click_ratio": round(click_s / python_s, 2),
        "repeat": repeat,
    }


PG_STATS_LAG_S = 11.0


def idle_cpu(target: str, seconds: float, scratch: Scratch) -> dict[str, Any]:
    """CPU of an idle runner (2 workers) and its watchdog over `seconds`, in % of one core;
    on PostgreSQL also the transactions it commits per second (each query outside a
    transaction is one), from the server's statistics of the bench's own database."""
    postgres = target.startswith("postgresql://")
    with runner(target, 2, scratch.file("runner", ".log")) as process:
        # Past start-up; on PostgreSQL also past the instant its queries are all counted: a
        # backend that ran one less than a second ago reports the next ones when it is next
        # idle a second after, or after 10 s (PGSTAT_IDLE_INTERVAL), so a runner that reads
        # rarely would report its start-up inside the window.
        time.sleep(PG_STATS_LAG_S if postgres else 2.0)
        pids = [process.pid, *child_pids(process.pid)]
        before = sum(cpu_ticks(pid) for pid in pids)
        xacts_before = pg_transactions(target) if postgres else 0
        started = time.perf_counter()
        time.sleep(seconds)
        after = sum(cpu_ticks(pid) for pid in pids)
        xacts_after = pg_transactions(target) if postgres else 0
        elapsed = time.perf_counter() - started
    percent = (after - before) / CLK_TCK / elapsed * 100
    found: dict[str, Any] = {
        "percent_of_core": round(percent, 3),
        "seconds": round(elapsed, 1),
        "processes": len(pids),
    }
    if postgres:
        found["transactions_per_s"] = round((xacts_after - xacts_before) / elapsed, 2)
    return found


def build_big_store(path: Path, stored: int) -> float:
    """A migrated store with `stored` other jobs: delayed, blocked on a dependency, completed.

    Direct SQL into the bench's own copy: enqueue_many would take minutes for a million jobs.
    Delayed jobs are `scheduled` (outside the claim index until due), as the store writes them.
    Seconds taken.
    """
    from queuectl import Queue

    started = time.perf_counter()
    Queue(str(path)).close()
    now = time.time_ns() // 1_000_000
    cwd = str(Path.cwd())
    third = stored // 3
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    columns = (
        "id, command, state, queue, priority, attempts, max_retries, run_at, depends_on, "
        "waiting_on, cwd, env, created_at, updated_at, started_at, finished_at, exit_code, "
        "duration_ms, scheduled"
    )
    series = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
    # The gate: a delayed job the blocked ones depend on.
    conn.execute(
        f"INSERT INTO jobs ({columns}) VALUES ('scale-gate', 'true', 'pending', 'default', 0, 0, 3, ?, '[]', 0, ?, '{{}}', ?, ?, NULL, NULL, NULL, NULL, 1)",
        (now + 86_400_000, cwd, now, now),
    )
    conn.execute(
        f"{series} INSERT INTO jobs ({columns}) SELECT 'delayed-' || x, 'true', 'pending', 'default', 0, 0, 3, "
        "? + x, '[]', 0, ?, '{}', ?, ?, NULL, NULL, NULL, NULL, 1 FROM n",
        (third, now + 86_400_000, cwd, now, now),
    )
    conn.execute(
        f"{series} INSERT INTO jobs ({columns}) SELECT 'blocked-' || x, 'true', 'pending', 'default', 0, 0, 3, "
        "?, '[\"scale-gate\"]', 1, ?, '{}', ?, ?, NULL, NULL, NULL, NULL, 0 FROM n",
        (third, now, cwd, now, now),
    )
    conn.execute(
        "INSERT INTO job_deps (dep_id, job_id) SELECT 'scale-gate', id FROM jobs WHERE id LIKE 'blocked-%'"
    )
    conn.execute(
        f"{series} INSERT INTO jobs ({columns}) SELECT 'done-' || x, 'true', 'completed', 'default', 0, 1, 3, "
        "?, '[]', 0, ?, '{}', ?, ?, ?, ? + 3, 0, 3, 0 FROM n",
        (
            stored - 2 * third - 1,
            now - 7_200_000,
            cwd,
            now - 7_200_000,
            now - 3_600_000,
            now - 3_600_000,
            now - 3_600_000,
        ),
    )
    # Finished over the last hour but its first minute, as a busy queue's are: the reads of
    # the last hour's throughput and durations (/metrics, the dashboard) have them all in
    # view. The update ends them, so migration 0009's trigger counts them as a runner would.
    conn.execute(
        "UPDATE jobs SET finished_at = ? - 120000 - (seq * 7919) % 3000000, duration_ms = 3 "
        "WHERE id LIKE 'done-%'",
        (now,),
    )
    # The store counts what it inserts itself (migration 0007); rows put in by hand are
    # counted here, as a fresh store's counters would have them.
    conn.execute("DELETE FROM job_counts")
    conn.execute(
        "INSERT INTO job_counts (queue, state, n, attempts) "
        "SELECT queue, state, COUNT(*), SUM(attempts) FROM jobs GROUP BY queue, state"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    count = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    conn.close()
    assert count == stored, (count, stored)
    return time.perf_counter() - started


def scale(n: int, stored: int, workers: int, scratch: Scratch, timeout_s: float) -> dict[str, Any]:
    """The drain of N jobs into an empty store, and into a copy of a store holding `stored` jobs."""
    from bench.stores import fresh_store

    with fresh_store("sqlite", scratch) as target:
        empty_s = drain(target, n, workers, scratch, timeout_s)
    template = scratch.file("big-template", ".db")
    build_s = build_big_store(template, stored)
    big = scratch.file("big", ".db")
    shutil.copyfile(template, big)
    big_s = drain(str(big), n, workers, scratch, timeout_s)
    template.unlink()
    return {
        "jobs": n,
        "stored": stored,
        "workers": workers,
        "empty_s": round(empty_s, 3),
        "stored_s": round(big_s, 3),
        "ratio": round(big_s / empty_s, 3),
        "build_s": round(build_s, 1),
    }
