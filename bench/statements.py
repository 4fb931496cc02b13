"""`python -m bench.statements`: where the PostgreSQL server's time goes in settle-and-claim.

One process settles and claims N no-op jobs two at a time on a fresh database whose
`log_min_duration_statement` is 0, then reads the server's log (it must be readable: `--log`)
and prints the server time of each statement, by its SQL block's first comment line, per job.
With `--limited` the queue has a concurrency limit of 2 (the claim under flow control); with
`--array` the jobs are an array limited to 2 at once instead (`--array 1-N%2`).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench.exchange import _fence
from bench.stores import Scratch, _pg_admin, fresh_store

DEFAULT_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
#: One logged statement: its duration, then its text up to the next log line. Only `statement`
#: and `execute` lines: the extended protocol also logs `parse` and `bind` of the same one.
LOGGED = re.compile(
    r"duration: ([\d.]+) ms\s+(?:statement|execute [^:]*): (.*?)(?=\n\d{4}-\d\d-\d\d |\Z)", re.S
)


def settle_and_claim(target: str) -> tuple[int, float]:
    """(jobs settled, seconds) of one runner's loop over the store's jobs, two at a time."""
    from queuectl.lifecycle import Outcome
    from queuectl.store import Runner, open_store

    store = open_store(target, durable=False)
    owner = f"bench-{os.getpid()}"
    store.register_runner(Runner(owner, "bench-host", os.getpid(), 2, None, 0, 0))
    settled, outcomes = 0, []
    started = time.perf_counter()
    while True:
        exchange = store.finish_and_claim(owner, outcomes, 2, None, 60.0)
        settled += len(exchange.settled)
        if not exchange.claims:
            break
        ended = time.monotonic()
        outcomes = [
            Outcome(c.id, c.attempt, 0, None, 0, ended_mono=ended, **_fence(c))
            for c in exchange.claims
        ]
    seconds = time.perf_counter() - started
    store.close()
    return settled, seconds


def statement_times(text: str) -> dict[str, list[float]]:
    """Milliseconds of each logged statement, keyed by its first line (a block's comment)."""
    times: dict[str, list[float]] = collections.defaultdict(list)
    for match in LOGGED.finditer(text):
        first = match.group(2).strip().splitlines()[0]
        times[" ".join(first.split())[:90]].append(float(match.group(1)))
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statements", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--limited", action="store_true", help="a concurrency limit of 2")
    parser.add_argument("--array", action="store_true", help="an array limited to 2 at once")
    parser.add_argument("--log", type=Path, default=DEFAULT_LOG, help="the server's log file")
    args = parser.parse_args(argv)
    from queuectl import Queue

    with fresh_store("postgres", Scratch()) as target:
        with Queue(target) as queue:
            if args.limited:
                queue.set_queue("default", concurrency=2)
            if args.array:
                queue.enqueue_array(f"1-{args.jobs}%2", {"command": "true"})
            else:
                queue.enqueue_many([{"command": "true"}] * args.jobs)
        database = urlsplit(target).path.lstrip("/")
        with _pg_admin() as admin:
            admin.execute(f'ALTER DATABASE "{database}" SET log_min_duration_statement = 0')
        offset = args.log.stat().st_size
        settled, seconds = settle_and_claim(target)
        time.sleep(0.5)  # the server's last lines
        with args.log.open(errors="replace") as log:
            log.seek(offset)
            times = statement_times(log.read())
    total_ms = sum(sum(each) for each in times.values())
    print(
        f"{settled} jobs in {seconds:.2f}s = {settled / seconds:,.0f}/s, "
        f"{seconds / settled * 1e6:,.0f} us a job; server statements {total_ms / settled * 1000:,.0f} us a job"
    )
    for first, each in sorted(times.items(), key=lambda item: -sum(item[1]))[:12]:
        print(
            f"  {sum(each) / settled * 1000:6.1f} us/job  {len(each):6d} x "
            f"{sum(each) / len(each) * 1000:7.1f} us  {first}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
