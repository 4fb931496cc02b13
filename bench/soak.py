"""`python -m bench.soak`: the store stays small when finished jobs expire.

    python -m bench.soak [--n 200000] [--rate 2000] [--kind sqlite|postgres]

Pushes N no-op jobs through a store with `retain_completed 1s` at `--rate` jobs a second,
settling them through the runner's own store calls (no processes spawned) and expiring old ones
as a runner's housekeeping does (every second here), and reports the store's size after each
tenth of the jobs: a SQLite file (its WAL left out: it is reset at each checkpoint), or a
PostgreSQL database. Also the longest expiry transaction (how long it held the write lock), and
where the pages are at the first tenth and at the end.

The size follows the jobs alive at once: the rate times the retention and the expiry interval.
On SQLite the store's clock is stepped by 1/rate a job, so every second of it holds the same
jobs however the machine stalls, and any growth is the store's own; the run goes as fast as it
can. PostgreSQL takes its instants from the server's clock: the run keeps the pace in real time,
and a stall on a loaded machine leaves more jobs alive for a while.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from typing import Any

from bench.stores import Scratch, fresh_store
from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.runner.maintenance import EXPIRY_BATCH, EXPIRY_MAX_BATCHES
from queuectl.store import Store, open_store

FINISHED = ["completed", "cancelled"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2000, help="jobs a second")
    parser.add_argument("--kind", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--vacuum-every",
        type=float,
        default=10.0,
        help="PostgreSQL with autovacuum off: VACUUM the tables this often in seconds, as "
        "autovacuum would (0: never)",
    )
    args = parser.parse_args(argv)
    scratch = Scratch()
    try:
        with fresh_store(args.kind, scratch) as target:
            soak(target, args.kind, args.n, args.batch, args.rate, args.vacuum_every)
    finally:
        scratch.close()


def soak(target: str, kind: str, n: int, batch: int, rate: float, vacuum_every: float) -> None:
    clock = SteppedClock() if kind == "sqlite" else None
    store = open_store(target, clock, durable=False)
    vacuum = Vacuum(target, vacuum_every) if kind == "postgres" else None
    store.set_config("retain_completed", 1)
    tenth = n // 10
    sizes: list[tuple[int, int, int]] = []  # (jobs done, size in bytes, most jobs alive)
    parts: dict[str, dict[str, int]] = {}
    expiries: list[tuple[float, float]] = []  # each expiry transaction: (wall, CPU) seconds
    most_alive = done = 0
    started = time.monotonic()
    next_expiry = store.now()
    while done < n:
        if clock:
            clock.ms += round(batch * 1000 / rate)
        else:  # hold the pace, without making up for a slow stretch in a burst
            time.sleep(max(0.0, started + done / rate - time.monotonic()))
        store.enqueue_many([new_job({"command": "true"}, cwd="/") for _ in range(batch)])
        claims = store.finish_and_claim("soak", [], batch, None, 30).claims
        outcomes = [Outcome(c.id, c.attempt, 0, None, 1, b"ok\n", token=c.token) for c in claims]
        store.finish_and_claim("soak", outcomes, 0, None, 30)
        done += len(claims)
        if store.now() >= next_expiry:  # as a runner's housekeeping
            next_expiry = store.now() + 1000
            most_alive = max(most_alive, _alive(store))
            before_ms = store.now() - 1000
            for _ in range(EXPIRY_MAX_BATCHES):
                began, began_cpu = time.monotonic(), time.thread_time()
                deleted = store.expire(FINISHED, before_ms, EXPIRY_BATCH)
                expiries.append((time.monotonic() - began, time.thread_time() - began_cpu))
                if deleted < EXPIRY_BATCH:
                    break
            if vacuum:
                vacuum.maybe()
        if done >= tenth * (len(sizes) + 1):
            sizes.append((done, _size(target, kind), most_alive))
            most_alive = 0
            if len(sizes) == 1:
                parts["first tenth"] = _parts(target, kind)
    took_s = time.monotonic() - started
    parts["end"] = _parts(target, kind)
    store.close()
    if vacuum:
        print(vacuum.what)
    pace = f"{rate:,.0f} jobs a second of its stepped clock" if clock else f"{done / took_s:,.0f}/s"
    print(
        f"{kind}: {done:,} jobs through the store in {took_s:.0f}s ({pace}); "
        "retain_completed 1s, expiry every second"
    )
    for jobs, size, alive in sizes:
        print(f"  after {jobs:>9,}: {size / 1e6:6.2f} MB   (at most {alive:,} jobs alive)")
    first, last = sizes[0][1], sizes[-1][1]
    print(f"end / first tenth: {last / first:.2f}x")
    print("pages (sqlite) or bytes (postgres) by table or index: first tenth, end")
    for name in sorted(parts["end"], key=lambda k: -parts["end"][k]):
        print(f"  {name}: {parts['first tenth'].get(name, 0)} {parts['end'][name]}")
    expiries.sort()
    walls = [wall for wall, _ in expiries]
    longest, longest_cpu = expiries[-1]
    # Wall time well above CPU time is a wait: for the disk, or for a core on a busy machine.
    print(
        f"expiry transactions of up to {EXPIRY_BATCH} jobs: {len(walls):,}, median "
        f"{walls[len(walls) // 2] * 1000:.1f} ms, 99th percentile "
        f"{walls[len(walls) * 99 // 100] * 1000:.1f} ms, longest {longest * 1000:.1f} ms "
        f"(of which {longest_cpu * 1000:.1f} ms on the CPU in this process)"
    )


class SteppedClock:
    """The soak's clock on SQLite: moved on by the soak, never by the machine."""

    def __init__(self) -> None:
        self.ms = time.time_ns() // 1_000_000

    def now_ms(self) -> int:
        return self.ms


class Vacuum:
    """Stands in for autovacuum where the server has it off (this bench's server does): without
    it, no PostgreSQL table gives back the space of deleted rows, and the database grows with
    every job that ever went through."""

    def __init__(self, target: str, every_s: float) -> None:
        import psycopg

        self.conn = psycopg.connect(target, autocommit=True)
        row = self.conn.execute("SHOW autovacuum").fetchone()
        self.on = bool(every_s) and row is not None and row[0] == "off"
        self.every_s = every_s
        self.next_at = time.monotonic() + every_s
        self.what = (
            f"autovacuum is off on this server: VACUUM every {every_s:g}s in its place"
            if self.on
            else f"autovacuum: {row[0] if row else '?'}; no VACUUM of our own"
        )

    def maybe(self) -> None:
        if self.on and time.monotonic() >= self.next_at:
            self.next_at = time.monotonic() + self.every_s
            self.conn.execute(
                "VACUUM jobs, attempts, job_count_deltas, job_counts, finished_minutes"
            )


def _alive(store: Store) -> int:
    return sum(n for states in store.counts().values() for n in states.values())


def _size(target: str, kind: str) -> int:
    if kind == "sqlite":
        with sqlite3.connect(target) as conn:
            return int(conn.execute("PRAGMA page_count").fetchone()[0]) * int(
                conn.execute("PRAGMA page_size").fetchone()[0]
            )
    import psycopg

    with psycopg.connect(target) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        return int(row[0]) if row else 0


def _parts(target: str, kind: str) -> dict[str, int]:
    """Pages of each table and index and the free list (SQLite), or the bytes of each table
    (with its TOAST) and of each index (PostgreSQL): what grows, if anything does."""
    if kind == "sqlite":
        with sqlite3.connect(target) as conn:
            found = dict(conn.execute("SELECT name, COUNT(*) FROM dbstat GROUP BY name"))
            found["(free list)"] = conn.execute("PRAGMA freelist_count").fetchone()[0]
        return {str(k): int(v) for k, v in found.items()}
    import psycopg

    with psycopg.connect(target) as conn:
        rows: list[Any] = conn.execute(
            "SELECT relname, CASE relkind WHEN 'r' THEN pg_table_size(oid) "
            "ELSE pg_relation_size(oid) END FROM pg_class "
            "WHERE relkind IN ('r', 'i') AND relnamespace = 'public'::regnamespace"
        ).fetchall()
    return {str(name): int(size) for name, size in rows}


if __name__ == "__main__":
    main()
