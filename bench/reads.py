"""Reads with a million jobs stored: `status`, `queue list`, `/api/status`,
`/api/queues`, `/metrics` and `list` with every kind of filter, on an empty store and on a big
one, and the peak memory of `enqueue --file` of N JSON Lines.

    python -m bench.reads --stored 1000000 5000000 [--kinds sqlite postgres] [--file-lines N]

`python -m bench` runs the reads at 1,000,000 stored (`--reads-stored`) with its scale section.
Server time: the median of in-process calls (the Queue method, or the route through FastAPI's
test client), no process start. The big stores are built with direct SQL: on SQLite by
bench.subject.build_big_store (delayed, blocked, completed; one queue) with a fifth of the
delayed jobs, the oldest third of the store, moved to queue `sync`; on PostgreSQL by
build_big_pg (the same mix over five queues, `sync` holding delayed jobs only). So `pending`
and `sync` are old and `completed` is new: a filter's index must be walked, not the newest jobs.
The completed jobs finished over the last hour but its first minute: everything the last
hour's throughput and durations cover (/metrics, the dashboard's chart) is there.

The ratio the target bounds (1.2x) is the big store over a store of the same shape with a few
jobs (built the same way with SHAPE_JOBS jobs: the same queues and states, so the same rows of
counts to read and render): a read that grows with the jobs stored shows there, where one over
the truly empty store also counts the few extra rows a store with five queues reports. Both
are given. `status` and `queue list` are also timed as whole CLI processes (`queuectl status`),
the call a user or `watch` makes.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import CHILD_ENV, QUEUECTL
from bench.stores import Scratch, fresh_store
from bench.subject import build_big_store

QUEUES = ("default", "mail", "video", "reports", "sync")


def build_big_pg(target: str, stored: int) -> float:
    """`stored` jobs on PostgreSQL: a third delayed (over five queues), a third blocked, a third
    completed (over four: not `sync`), inserted by generate_series (the counters' triggers see
    every row). Seconds taken."""
    import psycopg

    started = time.perf_counter()
    now = time.time_ns() // 1_000_000
    third = stored // 3
    columns = (
        "id, command, state, queue, priority, attempts, max_retries, run_at, depends_on, "
        "waiting_on, cwd, env, created_at, updated_at, started_at, finished_at, exit_code, "
        "duration_ms, scheduled"
    )
    queue = "(ARRAY['default','mail','video','reports','sync'])[1 + x %% 5]"
    newer = "(ARRAY['default','mail','video','reports'])[1 + x %% 4]"
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO jobs ({columns}) VALUES ('scale-gate', 'true', 'pending', 'default', "
            "0, 0, 3, %s, '[]', 0, '/', '{}', %s, %s, NULL, NULL, NULL, NULL, true)",
            (now + 86_400_000, now, now),
        )
        conn.execute(
            f"INSERT INTO jobs ({columns}) SELECT 'delayed-' || x, 'true', 'pending', {queue}, "
            "0, 0, 3, %s + x, '[]', 0, '/', '{}', %s, %s, NULL, NULL, NULL, NULL, true "
            "FROM generate_series(1, %s) AS x",
            (now + 86_400_000, now, now, third),
        )
        conn.execute(
            f"INSERT INTO jobs ({columns}) SELECT 'blocked-' || x, 'true', 'pending', {newer}, "
            "0, 0, 3, %s, '[\"scale-gate\"]', 1, '/', '{}', %s, %s, NULL, NULL, NULL, NULL, "
            "false FROM generate_series(1, %s) AS x",
            (now, now, now, third),
        )
        conn.execute(
            "INSERT INTO job_deps (dep_id, job_id) SELECT 'scale-gate', 'blocked-' || x "
            "FROM generate_series(1, %s) AS x",
            (third,),
        )
        conn.execute(
            f"INSERT INTO jobs ({columns}) SELECT 'done-' || x, 'true', 'completed', {newer}, "
            "0, 1, 3, %s, '[]', 0, '/', '{}', %s, %s, %s, %s + 3, 0, 3, false "
            "FROM generate_series(1, %s) AS x",
            (
                now - 7_200_000,
                now - 7_200_000,
                now - 3_600_000,
                now - 3_600_000,
                now - 3_600_000,
                stored - 2 * third - 1,
            ),
        )
        # Finished over the last hour but its first minute (see bench.subject.build_big_store).
        conn.execute(
            "UPDATE jobs SET finished_at = %s - 120000 - (seq * 7919) %% 3000000 "
            "WHERE id LIKE 'done-%%'",
            (now,),
        )
        conn.execute("VACUUM ANALYZE jobs")
    return time.perf_counter() - started


def median_ms(calls: list[Callable[[], Any]], repeat: int) -> list[float]:
    """The median ms of each call, run in turns so that the machine's load falls on each alike."""
    for call in calls:
        call()  # warm: connections, prepared statements (psycopg's after 5 runs), imports
    times: list[list[float]] = [[] for _ in calls]
    for _ in range(repeat):
        for call, taken in zip(calls, times, strict=True):
            started = time.perf_counter()
            call()
            taken.append((time.perf_counter() - started) * 1000)
    return [round(statistics.median(taken), 3) for taken in times]


def build_big_sqlite(path: Path, stored: int) -> float:
    """build_big_store's store, with a fifth of its delayed jobs (the oldest) in queue `sync`."""
    started = time.perf_counter()
    build_big_store(path, stored)
    with sqlite3.connect(path, isolation_level=None) as conn:
        conn.execute("UPDATE jobs SET queue = 'sync' WHERE id LIKE 'delayed-%' AND seq % 5 = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - started


#: Text that a few of the big store's jobs hold (NEEDLES of them, spread over it): in their
#: command, and in their last error.
NEEDLE_COMMAND = "render-scene-needle"
NEEDLE_ERROR = "Segfault-needle"
NEEDLES = 5


def plant_needles(target: str, kind: str, stored: int) -> None:
    """Give NEEDLES jobs of the store a command holding NEEDLE_COMMAND and NEEDLES others a
    last error holding NEEDLE_ERROR (by direct SQL, as the store was built; statements without
    parameters, so a % is sent as it is)."""
    step = max(1, stored // NEEDLES)
    command = (
        f"UPDATE jobs SET command = './{NEEDLE_COMMAND} --frame ' || seq WHERE seq % {step} = 1"
    )
    error = f"UPDATE jobs SET last_error = 'exit 139: {NEEDLE_ERROR}' WHERE seq % {step} = 2"
    if kind == "sqlite":
        with sqlite3.connect(target, isolation_level=None) as conn:
            conn.execute(command)
            conn.execute(error)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return
    import psycopg

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(command)
        conn.execute(error)
        conn.execute("VACUUM ANALYZE jobs")


#: The reads the targets bound by 20 ms and by 1.2x the same read on an empty store.
SUMMARY = ("status", "queue list", "GET /api/status", "GET /api/queues", "GET /metrics")
BOUND_MS = 20.0
BOUND_RATIO = 1.2
#: Jobs in the store of the big one's shape that the ratio is taken against.
SHAPE_JOBS = 30
#: CLI reads timed as whole processes, and how many runs of each (the median is kept).
CLI_READS = {"status": ["status"], "queue list": ["queue", "list"]}
CLI_RUNS = 11


def reads(
    targets: list[str], stored: int, repeat: int = 51, only: str | None = None
) -> list[dict[str, float]]:
    """Median server time in ms of each read (those whose name holds `only`), on each
    store."""
    from fastapi.testclient import TestClient

    from queuectl import Queue
    from queuectl.api.app import create_app

    with ExitStack() as stack:
        queues = [stack.enter_context(Queue(target)) for target in targets]
        clients = [
            stack.enter_context(
                TestClient(
                    create_app(target, token="bench"),
                    base_url="http://127.0.0.1:8765",
                    headers={"Authorization": "Bearer bench"},
                )
            )
            for target in targets
        ]
        calls: dict[str, list[Callable[[], Any]]] = {
            "status": [q.status for q in queues],
            "queue list": [q.queues for q in queues],
        }
        for path in (
            "/api/status",
            "/api/queues",
            "/metrics",
            "/api/jobs?limit=50",
            "/api/stats/throughput",
            # Searches: one that matches nothing (without an index it reads every job), a
            # few jobs by their command's text and by their last error's, an old id's prefix,
            # text every job's command holds (a page at once), and two characters (too few
            # for a trigram index: a bounded window of jobs is read).
            "/api/jobs?limit=50&search=no-such-text",
            f"/api/jobs?limit=50&search={NEEDLE_COMMAND}",
            f"/api/jobs?limit=50&search={NEEDLE_ERROR}",
            "/api/jobs?limit=50&search=delayed-1",
            "/api/jobs?limit=50&search=TRUE&state=pending",
            "/api/jobs?limit=50&search=zq",
        ):
            calls[f"GET {path}"] = [
                lambda c=c, p=path: c.get(p).raise_for_status() for c in clients
            ]
        lists: list[tuple[list[str], list[str], int, str | None]] = [
            ([s] if s else [], [q] if q else [], 50, None)
            for s in (None, "pending", "completed", "dead")
            for q in (None, "sync", "nowhere")
        ]
        lists += [
            (["pending", "dead"], ["mail", "sync"], 50, None),  # the union: four index walks
            (["pending"], [], 50, str(stored // 2)),  # a page from the middle
            (["dead"], [], 0, None),  # --limit 0: all of them
            (["completed"], ["sync"], 0, None),
        ]
        for states, names, limit, cursor in lists:
            label = " ".join(
                [f"--state {s}" for s in states]
                + [f"--queue {n}" for n in names]
                + [f"--limit {limit}"]
                + (["--before <middle>"] if cursor else [])
            )
            calls[f"list {label}"] = [
                lambda q=q, s=states, n=names, li=limit, c=cursor: q.page(s, n, li or None, c)
                for q in queues
            ]
        found: list[dict[str, float]] = [{} for _ in targets]
        for name, each in calls.items():
            if only is not None and only not in name:
                continue
            for into, ms in zip(found, median_ms(each, repeat), strict=True):
                into[name] = ms
    return found


def measure(
    kind: str, stored: int, scratch: Scratch, repeat: int = 51, only: str | None = None
) -> dict[str, Any]:
    """Each read on an empty store of this kind, on one of the big one's shape with a few jobs,
    and on one holding `stored` jobs (the three in turns), and the ratios."""
    with ExitStack() as stack:
        empty, shape, target = (stack.enter_context(fresh_store(kind, scratch)) for _ in range(3))
        small, big = scratch.file("shape", ".db"), scratch.file("big", ".db")
        try:
            if kind == "sqlite":
                build_big_sqlite(small, SHAPE_JOBS)
                build_s = build_big_sqlite(big, stored)
                shape, target = str(small), str(big)
            else:
                build_big_pg(shape, SHAPE_JOBS)
                build_s = build_big_pg(target, stored)
            plant_needles(shape, kind, SHAPE_JOBS)
            plant_needles(target, kind, stored)
            on_empty, on_shape, on_big = reads([empty, shape, target], stored, repeat, only)
            cli = cli_reads([empty, shape, target]) if only is None else {}
        finally:
            small.unlink(missing_ok=True)
            big.unlink(missing_ok=True)
    rows = {
        name: {
            "empty_ms": on_empty[name],
            "shape_ms": on_shape[name],
            "stored_ms": on_big[name],
            "ratio": _ratio(on_big[name], on_shape[name]),
            "ratio_empty": _ratio(on_big[name], on_empty[name]),
        }
        for name in on_empty
    }
    return {"stored": stored, "build_s": round(build_s, 1), "reads": rows, "cli": cli}


def cli_reads(targets: list[str]) -> dict[str, dict[str, float]]:
    """The median wall time in ms of each CLI read as a whole process on each store, run in
    turns, and the last store's over the second's (the big one over its shape)."""
    found: dict[str, dict[str, float]] = {}
    for name, args in CLI_READS.items():
        taken: list[list[float]] = [[] for _ in targets]
        for _ in range(CLI_RUNS):
            for target, into in zip(targets, taken, strict=True):
                started = time.perf_counter()
                subprocess.run(
                    [QUEUECTL, "--db", target, *args],
                    stdout=subprocess.DEVNULL,
                    env=CHILD_ENV,
                    check=True,
                )
                into.append((time.perf_counter() - started) * 1000)
        empty_ms, shape_ms, stored_ms = (round(statistics.median(t), 1) for t in taken)
        found[name] = {
            "empty_ms": empty_ms,
            "shape_ms": shape_ms,
            "stored_ms": stored_ms,
            "ratio": _ratio(stored_ms, shape_ms),
        }
    return found


def _ratio(value: float, base: float) -> float:
    return round(value / base, 2) if base > 0 else 1.0


def enqueue_file_memory(target: str, lines: int, scratch: Scratch) -> dict[str, Any]:
    """Seconds and peak RSS (MB) of `queuectl enqueue --file PATH` of `lines` JSON Lines."""
    path = scratch.file("jobs", ".jsonl")
    with open(path, "w") as handle:
        for _ in range(lines // 10_000):
            handle.write('{"command": "true"}\n' * 10_000)
        handle.write('{"command": "true"}\n' * (lines % 10_000))
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-v", QUEUECTL, "--db", target, "enqueue", "--file", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
        check=True,
    )
    seconds = time.perf_counter() - started
    path.unlink()
    found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    rss_mb = round(int(found.group(1)) / 1024, 1) if found else None
    return {"lines": lines, "seconds": round(seconds, 1), "max_rss_mb": rss_mb}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.reads", description=__doc__)
    parser.add_argument("--stored", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--kinds", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--repeat", type=int, default=51, help="calls of each read (the median)")
    parser.add_argument(
        "--file-lines", type=int, default=0, help="enqueue --file of this many lines (0: skip)"
    )
    parser.add_argument(
        "--only", metavar="TEXT", help="only the reads whose name holds TEXT (no CLI reads)"
    )
    args = parser.parse_args(argv)
    scratch = Scratch()
    results: dict[str, Any] = {}
    try:
        for kind in args.kinds:
            results[kind] = {}
            for stored in args.stored:
                results[kind][str(stored)] = found = measure(
                    kind, stored, scratch, args.repeat, args.only
                )
                print(f"{kind} {stored:,}: {json.dumps(found)}", file=sys.stderr, flush=True)
            if args.file_lines:
                with fresh_store(kind, scratch) as target:
                    results[kind]["enqueue_file"] = enqueue_file_memory(
                        target, args.file_lines, scratch
                    )
    finally:
        scratch.close()
    print(render(results))
    return 0


def render(results: dict[str, Any]) -> str:
    """A markdown table: each read's server time, empty and with N stored, and the ratio."""
    columns = [
        (kind, stored)
        for kind, by_size in results.items()
        for stored, cell in by_size.items()
        if stored.isdigit() and "reads" in cell
    ]
    if not columns:
        return f"reads: nothing measured: {json.dumps(results)[:300]}"
    head = " | ".join(f"{kind} {int(stored):,}" for kind, stored in columns)
    lines = [
        f"| read, ms (summary rows: empty / {SHAPE_JOBS} jobs of its shape / stored = ratio"
        f" to the shape; lists: empty / stored) | {head} |",
        "|---" * (1 + len(columns)) + "|",
    ]
    first = results[columns[0][0]][columns[0][1]]["reads"]
    for name in first:
        cells = []
        for kind, stored in columns:
            row = results[kind][stored]["reads"].get(name)
            if row is None:
                cells.append("n/a")
            elif name in SUMMARY and "shape_ms" in row:
                cells.append(
                    f"{row['empty_ms']:.2f} / {row['shape_ms']:.2f} / {row['stored_ms']:.2f}"
                    f" = {row['ratio']:.2f}x"
                )
            else:  # an empty store lists nothing: no ratio to speak of
                cells.append(f"{row['empty_ms']:.2f} / {row['stored_ms']:.2f}")
        lines.append(f"| {name} | {' | '.join(cells)} |")
    for kind, stored in columns:
        cell = results[kind][stored]
        lines.append(f"\n{kind} {int(stored):,} built in {cell['build_s']:.0f} s")
        for name, row in cell.get("cli", {}).items():
            lines.append(
                f"  queuectl {name}, whole process: empty {row['empty_ms']:.1f} ms, its shape "
                f"{row['shape_ms']:.1f} ms, stored {row['stored_ms']:.1f} ms = {row['ratio']:.2f}x"
            )
    for kind, by_size in results.items():
        for stored, cell in by_size.items() if isinstance(by_size, dict) else ():
            if stored.isdigit() and "reads" not in cell:  # skipped, failed
                lines.append(f"{kind} {int(stored):,}: n/a ({json.dumps(cell)[:200]})")
        if isinstance(by_size, dict) and "enqueue_file" in by_size:
            lines.append(f"{kind} enqueue --file: {by_size['enqueue_file']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
