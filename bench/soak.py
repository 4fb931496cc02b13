"""`python -m bench.soak`: the store stays small when finished jobs expire (SPEC 9.4).

Pushes N no-op jobs through a SQLite store with `retain_completed 1s`, settling them through
the runner's own store calls (no processes spawned) and expiring old ones as a runner's
housekeeping does, then compares the file's size after the first tenth with the size at the
end, and reports the longest expiry transaction (how long it held the write lock).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.runner.supervisor import EXPIRY_BATCH, EXPIRY_MAX_BATCHES
from queuectl.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="queuectl-soak-")
    path = os.path.join(folder, "queue.db")
    store = open_store(path, durable=False)
    store.set_config("retain_completed", 1)
    done = 0
    sizes: dict[int, int] = {}
    longest_s = 0.0
    next_expiry = time.monotonic()
    while done < args.n:
        store.enqueue_many([new_job({"command": "true"}, cwd="/") for _ in range(args.batch)])
        claims = store.finish_and_claim("soak", [], args.batch, None, 30).claims
        outcomes = [Outcome(c.id, c.attempt, 0, None, 1, b"ok\n") for c in claims]
        store.finish_and_claim("soak", outcomes, 0, None, 30)
        done += len(claims)
        if time.monotonic() >= next_expiry:  # as a runner's housekeeping: every second here
            next_expiry = time.monotonic() + 1.0
            before_ms = store.now() - 1000
            for _ in range(EXPIRY_MAX_BATCHES):
                started = time.monotonic()
                deleted = store.expire(["completed", "cancelled"], before_ms, EXPIRY_BATCH)
                longest_s = max(longest_s, time.monotonic() - started)
                if deleted < EXPIRY_BATCH:
                    break
        if done >= args.n // 10 and args.n // 10 not in sizes:
            sizes[args.n // 10] = _size(path)
    time.sleep(1.1)
    before_ms = store.now() - 1000
    while store.expire(["completed", "cancelled"], before_ms, EXPIRY_BATCH) == EXPIRY_BATCH:
        pass
    sizes[args.n] = _size(path)
    store.close()
    first, last = sizes[args.n // 10], sizes[args.n]
    print(f"jobs through the store: {done}; retain_completed 1s")
    print(
        f"store size after {args.n // 10:,}: {first / 1e6:.2f} MB; after {args.n:,}: {last / 1e6:.2f} MB"
    )
    print(f"longest expiry transaction ({EXPIRY_BATCH} jobs): {longest_s * 1000:.1f} ms")


def _size(path: str) -> int:
    """The database file's size (the WAL is reset at each checkpoint, so it is left out)."""
    return os.path.getsize(path)


if __name__ == "__main__":
    main()
