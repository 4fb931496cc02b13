"""`python -m bench.backlog`: what a runner that serves one queue pays per claim while another
queue holds a backlog of pending jobs (a `worker start --queue gpu` beside a big queue no
runner of it serves, or the jobs a bulk retry makes pending).

On a fresh store of each kind, a runner serving only `probe` enqueues one job there and claims
it (settling the one before) `--claims` times; the median and the longest claim are printed
with no backlog, then with `--backlog` pending jobs in the queue `default`. Target: the two
alike (a claim for given queues should not read other queues' jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from bench.stores import Scratch, fresh_store, postgres_available

WARMUP = 10


def claim_times(target: str, backlog: int, claims: int) -> dict[str, Any]:
    """The probe runner's claims on `target` with `backlog` pending jobs elsewhere, in ms."""
    from queuectl import Queue
    from queuectl.lifecycle import Outcome
    from queuectl.store import Runner, open_store

    with Queue(target) as queue:
        if backlog:
            queue.enqueue_many([{"command": "true", "queue": "default"}] * backlog)
        store = open_store(target, durable=False)
        try:
            store.register_runner(Runner("probe", "host", os.getpid(), 1, ["probe"], 0, 0))
            held: list[Outcome] = []
            times: list[float] = []
            for _ in range(claims + WARMUP):
                queue.enqueue("true", queue="probe")
                started = time.perf_counter()
                got = store.finish_and_claim("probe", held, 1, ["probe"], 30).claims
                times.append((time.perf_counter() - started) * 1000)
                held = [Outcome(c.id, c.attempt, 0, None, 1, None, token=c.token) for c in got]
        finally:
            store.close()
    kept = times[WARMUP:]
    return {
        "backlog": backlog,
        "median_ms": round(statistics.median(kept), 2),
        "max_ms": round(max(kept), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backlog", description=__doc__)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--claims", type=int, default=50)
    parser.add_argument(
        "--kinds", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    args = parser.parse_args(argv)
    scratch = Scratch()
    try:
        for kind in args.kinds:
            if kind == "postgres" and (why := postgres_available()) is not None:
                print(f"{kind}: skipped ({why})")
                continue
            for backlog in (0, args.backlog):
                with fresh_store(kind, scratch) as target:
                    print(f"{kind:<8} {json.dumps(claim_times(target, backlog, args.claims))}")
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
