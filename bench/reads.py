"""Reads with a million jobs stored (issue 19): `status`, `queue list`, `/api/status`,
`/api/queues`, `/metrics` and `list` with every filter, on an empty store and on a big one,
and the peak memory of `enqueue --file` of N JSON Lines.

    python -m bench.reads --stored 1000000 [--kinds sqlite postgres] [--file-lines 1000000]

Server time: the median of in-process calls (the Queue method, or the route through FastAPI's
test client), no process start. The big stores are built once with direct SQL: on SQLite by
bench.subject.build_big_store (delayed, blocked, completed), on PostgreSQL by build_big_pg
(the same mix over five queues).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import CHILD_ENV, QUEUECTL
from bench.stores import Scratch, fresh_store
from bench.subject import build_big_store

QUEUES = ("default", "mail", "video", "reports", "sync")


def build_big_pg(target: str, stored: int) -> float:
    """`stored` jobs on PostgreSQL: a third delayed, a third blocked, a third completed, over
    five queues, inserted by generate_series (the counters' triggers see every row)."""
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
            f"INSERT INTO jobs ({columns}) SELECT 'blocked-' || x, 'true', 'pending', {queue}, "
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
            f"INSERT INTO jobs ({columns}) SELECT 'done-' || x, 'true', 'completed', {queue}, "
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
        conn.execute("VACUUM ANALYZE jobs")
    return time.perf_counter() - started


def median_ms(call: Callable[[], Any], repeat: int) -> float:
    call()  # warm: connections, prepared statements, imports
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def reads(target: str, repeat: int = 15) -> dict[str, float]:
    """Median server time in ms of each read."""
    from fastapi.testclient import TestClient

    from queuectl import Queue
    from queuectl.api.app import create_app

    found: dict[str, float] = {}
    with (
        Queue(target) as queue,
        TestClient(create_app(target), base_url="http://127.0.0.1:8765") as client,
    ):
        found["status"] = median_ms(queue.status, repeat)
        found["queue list"] = median_ms(queue.queues, repeat)
        for path in ("/api/status", "/api/queues", "/metrics", "/api/jobs?limit=50"):
            found[f"GET {path}"] = median_ms(
                lambda p=path: client.get(p).raise_for_status(), repeat
            )
        for state in (None, "pending", "dead"):
            for name in (None, "default", "nowhere"):
                label = f"list --state {state or '-'} --queue {name or '-'} --limit 50"
                found[label] = median_ms(lambda s=state, n=name: queue.list(s, n, 50), repeat)
    return found


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
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--kinds", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--file-lines", type=int, default=1_000_000)
    parser.add_argument("--sqlite-store", type=Path, help="a big SQLite store built before")
    args = parser.parse_args(argv)
    scratch = Scratch()
    results: dict[str, Any] = {}
    try:
        for kind in args.kinds:
            row: dict[str, Any] = {}
            with fresh_store(kind, scratch) as target:
                row["empty"] = reads(target)
                row["enqueue_file"] = enqueue_file_memory(target, args.file_lines, scratch)
            with fresh_store(kind, scratch) as target:
                if kind == "sqlite":
                    big = args.sqlite_store or scratch.file("big", ".db")
                    if args.sqlite_store is None:
                        build_big_store(big, args.stored)
                    target = str(big)
                else:
                    build_big_pg(target, args.stored)
                row["stored"] = reads(target)
            results[kind] = row
            print(f"{kind}: {json.dumps(row, indent=2)}", file=sys.stderr, flush=True)
    finally:
        scratch.close()
    print(render(results, args.stored))
    return 0


def render(results: dict[str, Any], stored: int) -> str:
    lines = [f"| read | {' | '.join(f'{k} empty | {k} {stored:,}' for k in results)} |"]
    lines.append("|---" * (1 + 2 * len(results)) + "|")
    first = next(iter(results.values()))
    for name in first["empty"]:
        cells = [
            f"{r['empty'][name]:.1f} ms | {r['stored'][name]:.1f} ms" for r in results.values()
        ]
        lines.append(f"| {name} | {' | '.join(cells)} |")
    for kind, row in results.items():
        lines.append(f"\n{kind} enqueue --file: {row['enqueue_file']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
