"""Bulk changes of many jobs: `cancel --all` of N pending jobs, `dlq retry --all` of N
dead ones, `purge` of N completed ones, retention's expiry of N completed ones, and the
dashboard's retry of every job a filter matches (`filter-retry`: POST /api/jobs/bulk's
Queue.bulk, state dead and a search) of N dead ones, on both stores, in seconds.

    python -m bench.bulk --n 300000 [--kinds sqlite postgres] [--ops cancel retry ...] [--probe]

`--probe`: while each call runs, another process enqueues, claims and settles jobs of a queue of
its own, one at a time; the longest of its enqueues and of its exchanges (a claim with the
settlement of the job before), and the 99th percentile of both, say how long the bulk change
made other writers wait; on SQLite, so does the longest of its waits for the write lock alone
(the time from asking for it to having it, without the work or the commit). Every write transaction of the call itself is timed too (from the
moment it has the write lock to its commit), and the longest is given: how long the call held
SQLite's write lock at a time, at most (on PostgreSQL, its row locks).

Each measurement runs on a store of its own holding the N jobs, built with direct SQL (as
bench.reads builds its big stores; enqueue_many would take minutes): every tenth job has a
dependant among the others (a dependency edge each, so the cascades and the edges' clean-up are
part of what is timed). The dead and completed jobs have one attempt of history each. Timed:
the Queue call, in this process (no process start), as the CLI makes it: `cancel_all()`,
`retry(all=True)`, `purge(state)`; expiry calls the store as a runner's retention pass does,
batch after batch, until one deletes fewer than a batch. Each line also says how many jobs the
call changed, which must be N.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.stores import Scratch, fresh_store

OPS = ("cancel", "retry", "purge", "expire", "filter-retry", "idle")
#: How long the `idle` measurement lets the probe run with no bulk change: its waits then are
#: the floor the host's load alone gives.
IDLE_S = 5.0
#: The state the jobs of each measurement are built in.
BUILT_STATE = {
    "cancel": "pending",
    "retry": "dead",
    "purge": "completed",
    "expire": "completed",
    "filter-retry": "dead",
    "idle": "dead",
}
COLUMNS = (
    "id, command, state, queue, priority, attempts, max_retries, run_at, depends_on, "
    "waiting_on, cwd, env, created_at, updated_at, started_at, finished_at, exit_code, "
    "last_error, duration_ms, scheduled"
)
HOUR_MS = 3_600_000
#: How long each batch of the last filter-retry took (its search and its transaction), seconds.
BATCHES: list[float] = []


def _values(state: str, kind: str) -> str:
    """The SELECT list of job `x` in `state`: job x + 1 of every ten depends on job x (a pending
    dependant waits on it), attempts and their outcome as the state has them; finished ones
    a millisecond apart, in the order of their ids, an hour ago."""
    p, mod = ("?", "%") if kind == "sqlite" else ("%s", "%%")
    finished = state != "pending"
    attempts = {"pending": "0", "dead": "4", "completed": "1"}[state]
    exit_code = {"pending": "NULL", "dead": "1", "completed": "0"}[state]
    error = "'exit code 1'" if state == "dead" else "NULL"
    waiting = f"CASE WHEN x {mod} 10 = 2 THEN 1 ELSE 0 END" if state == "pending" else "0"
    depends = f"CASE WHEN x {mod} 10 = 2 THEN '[\"bulk-' || (x - 1) || '\"]' ELSE '[]' END"
    if kind != "sqlite":
        depends = f"({depends})::jsonb"
    return (
        f"'bulk-' || x, 'true', '{state}', 'default', 0, {attempts}, 3, {p}, {depends}, "
        f"{waiting}, '/', '{{}}', {p}, {p}, {p if finished else 'NULL'}, "
        f"{p + ' + x' if finished else 'NULL'}, {exit_code}, {error}, "
        f"{'3' if finished else 'NULL'}, "
        f"{'0' if kind == 'sqlite' else 'false'}"
    )


def build_sqlite(path: str, state: str, n: int) -> float:
    """N jobs in `state` in a migrated SQLite store; seconds taken."""
    started = time.perf_counter()
    now = time.time_ns() // 1_000_000
    then = now - HOUR_MS
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    series = "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?) "
    finished = state != "pending"
    stamps = (then, then, then, then, then) if finished else (now, now, now)
    conn.execute(
        f"{series} INSERT INTO jobs ({COLUMNS}) SELECT {_values(state, 'sqlite')} FROM n",
        (n, *stamps),
    )
    conn.execute(
        f"{series} INSERT INTO job_deps (dep_id, job_id) "
        "SELECT 'bulk-' || (x - 1), 'bulk-' || x FROM n WHERE x % 10 = 2",
        (n,),
    )
    if finished:
        conn.execute(
            "INSERT INTO attempts (job_id, attempt, runner, host, started_at, finished_at, "
            "exit_code, duration_ms, output) SELECT id, attempts, 'bench', 'bench', started_at, "
            "finished_at, exit_code, 3, CAST('done' AS BLOB) FROM jobs"
        )
    # The store counts what it inserts itself (migration 0007): these rows are counted here.
    conn.execute("DELETE FROM job_counts")
    conn.execute(
        "INSERT INTO job_counts (queue, state, n, attempts) "
        "SELECT queue, state, COUNT(*), SUM(attempts) FROM jobs GROUP BY queue, state"
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return time.perf_counter() - started


def build_pg(target: str, state: str, n: int) -> float:
    """N jobs in `state` in a migrated PostgreSQL store (the counters' triggers count them);
    seconds taken."""
    import psycopg

    started = time.perf_counter()
    now = time.time_ns() // 1_000_000
    then = now - HOUR_MS
    finished = state != "pending"
    stamps = (then, then, then, then, then) if finished else (now, now, now)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO jobs ({COLUMNS}) SELECT {_values(state, 'postgres')} "
            "FROM generate_series(1, %s) AS x",
            (*stamps, n),
        )
        conn.execute(
            "INSERT INTO job_deps (dep_id, job_id) SELECT 'bulk-' || (x - 1), 'bulk-' || x "
            "FROM generate_series(1, %s) AS x WHERE x %% 10 = 2",
            (n,),
        )
        if finished:
            conn.execute(
                "INSERT INTO attempts (job_id, attempt, runner, host, started_at, finished_at, "
                "exit_code, duration_ms, output) SELECT id, attempts, 'bench', 'bench', "
                "started_at, finished_at, exit_code, 3, 'done'::bytea FROM jobs"
            )
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


#: How long each write transaction of the last call held the write lock, seconds.
TRANSACTIONS: list[float] = []


def _timed_transactions(queue: Any) -> None:
    """Time every write transaction the queue's store makes, into TRANSACTIONS."""
    db = queue._store.db
    plain = db.transaction

    @contextmanager
    def timed() -> Iterator[Any]:
        with plain() as conn:  # the lock taken: from here to the commit it is held
            started = time.perf_counter()
            yield conn
        TRANSACTIONS.append(time.perf_counter() - started)

    db.transaction = timed


def run(op: str, target: str) -> int:
    """The bulk call of `op` on the store; how many jobs it changed."""
    from queuectl import Queue
    from queuectl.models import CANCELLED, COMPLETED
    from queuectl.runner.maintenance import EXPIRY_BATCH

    if op == "idle":
        time.sleep(IDLE_S)
        return 0
    with Queue(target) as queue:
        _timed_transactions(queue)
        if op == "cancel":
            return queue.cancel_all()
        if op == "retry":
            return len(queue.retry(all=True))
        if op == "purge":
            return queue.purge("completed")
        if op == "filter-retry":
            marks = [time.perf_counter()]
            done = queue.bulk(
                "retry",
                state="dead",
                search="true",
                progress=lambda *_: marks.append(time.perf_counter()),
            )
            BATCHES.extend(b - a for a, b in itertools.pairwise(marks))
            return done["changed"]
        store = queue._store  # as a runner's retention pass calls it
        before = queue.now_ms()
        done = 0
        while True:
            deleted = store.expire([COMPLETED, CANCELLED], before, EXPIRY_BATCH)
            done += deleted
            if deleted < EXPIRY_BATCH:
                return done


def measure(kind: str, op: str, n: int, scratch: Scratch, probe: bool = False) -> dict[str, Any]:
    """Build a store for `op` of N jobs, then time the call (and, with `probe`, the claims made
    meanwhile)."""
    with fresh_store(kind, scratch) as target:
        build = build_sqlite if kind == "sqlite" else build_pg
        build_s = build(target, BUILT_STATE[op], n)
        prober = Prober(target) if probe else None
        BATCHES.clear()
        TRANSACTIONS.clear()
        started = time.perf_counter()
        changed = run(op, target)
        seconds = time.perf_counter() - started
        claims = prober.stop() if prober is not None else {}
        if BATCHES:
            claims["batch_max_ms"] = round(max(BATCHES) * 1000, 1)
            claims["batches"] = len(BATCHES)
        if TRANSACTIONS:
            claims["tx_max_ms"] = round(max(TRANSACTIONS) * 1000, 1)
            claims["tx_p99_ms"] = round(_p99(TRANSACTIONS) * 1000, 1)
            claims["transactions"] = len(TRANSACTIONS)
        if kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(target + suffix).unlink(missing_ok=True)
    return {
        "n": n,
        "seconds": round(seconds, 2),
        "changed": changed,
        "build_s": round(build_s, 1),
        **claims,
    }


class Prober:
    """A runner's exchanges, one job at a time on a queue of their own, in a process of its own
    (not a thread: the GIL would add the bulk change's Python time to every claim), timed."""

    def __init__(self, target: str) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self.done = context.Event()
        self.ready = context.Event()
        self.results: Any = context.Queue()
        self.process = context.Process(
            target=_probe, args=(target, self.done, self.ready, self.results), daemon=True
        )
        self.process.start()
        self.ready.wait(60)  # it claims before the bulk change starts

    def stop(self) -> dict[str, Any]:
        self.done.set()
        enqueues, claims, waits = self.results.get(timeout=60)
        self.process.join(30)
        waited = {}
        if waits:
            waited = {
                "wait_max_ms": round(max(waits) * 1000, 1),
                "wait_p99_ms": round(_p99(waits) * 1000, 1),
            }
        return {
            **waited,
            "claims": len(claims),
            "claim_max_ms": round(max(claims) * 1000, 1),
            "claim_p99_ms": round(_p99(claims) * 1000, 1),
            "enqueue_max_ms": round(max(enqueues) * 1000, 1),
            "enqueue_p99_ms": round(_p99(enqueues) * 1000, 1),
        }


def _p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _probe(target: str, done: Any, ready: Any, results: Any) -> None:
    from queuectl import Queue
    from queuectl.lifecycle import Outcome

    enqueues: list[float] = []
    claims: list[float] = []
    waits = _time_lock_waits()
    with Queue(target) as queue:
        store = queue._store
        held: list[Outcome] = []
        while not done.is_set():
            started = time.perf_counter()
            queue.enqueue("true", queue="probe")
            enqueued = time.perf_counter()
            got = store.finish_and_claim("probe", held, 1, ["probe"], 30).claims
            enqueues.append(enqueued - started)
            claims.append(time.perf_counter() - enqueued)
            held = [Outcome(c.id, c.attempt, 0, None, 1, None, token=c.token) for c in got]
            ready.set()
    results.put((enqueues, claims, waits))


def _time_lock_waits() -> list[float]:
    """On SQLite, how long each of this process's writes waited for the write lock (from
    asking for it to having it), into the list returned."""
    from queuectl.store import sqlite

    waits: list[float] = []
    plain = sqlite._begin_immediate

    def timed(conn: Any, *args: Any) -> None:
        started = time.perf_counter()
        plain(conn, *args)
        waits.append(time.perf_counter() - started)

    sqlite._begin_immediate = timed  # type: ignore[assignment]
    return waits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk", description=__doc__)
    parser.add_argument("--n", type=int, nargs="+", default=[300_000], help="jobs per call")
    parser.add_argument("--kinds", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    parser.add_argument(
        "--probe", action="store_true", help="time a runner's claims during each call"
    )
    args = parser.parse_args(argv)
    scratch = Scratch()
    results: dict[str, Any] = {}
    try:
        for kind in args.kinds:
            for op in args.ops:
                for n in args.n:
                    found = measure(kind, op, n, scratch, args.probe)
                    results.setdefault(kind, {}).setdefault(op, []).append(found)
                    print(f"{kind} {op} {n:,}: {json.dumps(found)}", file=sys.stderr, flush=True)
    finally:
        scratch.close()
    print(render(results))
    return 0


def render(results: dict[str, Any]) -> str:
    """A markdown table: seconds of each call on each store and size."""
    lines = [
        "| call | store | jobs | seconds | changed | its longest transaction / p99, ms"
        " | another's enqueue meanwhile: max / p99 ms | another's claim: max / p99 ms"
        " | another's wait for the lock: max / p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, by_op in results.items():
        for op, rows in by_op.items():
            for row in rows:
                enqueued = (
                    f"{row['enqueue_max_ms']} / {row['enqueue_p99_ms']}" if "claims" in row else "-"
                )
                probed = (
                    f"{row['claim_max_ms']} / {row['claim_p99_ms']} ({row['claims']:,})"
                    if "claims" in row
                    else "-"
                )
                held = (
                    f"{row['tx_max_ms']} / {row['tx_p99_ms']} ({row['transactions']:,})"
                    if "transactions" in row
                    else "-"
                )
                waited = (
                    f"{row['wait_max_ms']} / {row['wait_p99_ms']}" if "wait_max_ms" in row else "-"
                )
                lines.append(
                    f"| {op} | {kind} | {row['n']:,} | {row['seconds']:.2f} | {row['changed']:,}"
                    f" | {held} | {enqueued} | {probed} | {waited} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
