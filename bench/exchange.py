"""The store alone: K processes loop settle-and-claim of no-op jobs through the store's
runner-facing calls (register_runner, finish_and_claim with the outcomes of the previous
claims), spawning nothing; jobs settled per second on each backend.

    python -m bench.exchange [--kinds sqlite postgres] [--procs 4 16] [--batch 2] [--seconds 3]
    python -m bench.exchange --counters-off   # each K also with the count triggers dropped

`--counters-off` measures what the exact counters (migration 0004) cost: each K runs on a store
with the triggers that count state changes and on one without them, in turns, so a counter
that made runners wait on each other would show as a gap growing with K.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import time
from typing import Any

from bench.stores import Scratch, drop_count_triggers, fresh_store

LEASE_S = 60.0
BATCH = 2  # jobs each exchange claims: a runner with two free slots
SECONDS = 3.0


def _loop(target: str, index: int, batch: int, seconds: float, go: Any, done: Any) -> None:
    """One process: register as a runner, say so on `done`, wait for `go` (its value: the
    instant of the start), then settle what it claimed and claim again for `seconds` or until
    the queue is empty; puts (jobs settled, when it ended) on `done`."""
    from queuectl.lifecycle import Outcome
    from queuectl.store import Runner, open_store

    store = open_store(target, durable=False)
    owner = f"bench-{os.getpid()}"
    store.register_runner(Runner(owner, f"host-{index}", os.getpid(), batch, None, 0, 0))
    done.put(None)
    while go.value == 0.0:
        time.sleep(0.001)
    stop_at = go.value + seconds
    settled = 0
    outcomes: list[Outcome] = []
    while True:
        want = batch if time.monotonic() < stop_at else 0
        exchange = store.finish_and_claim(owner, outcomes, want, None, LEASE_S)
        settled += len(exchange.settled)
        ended = time.monotonic()
        if not exchange.claims:
            break
        outcomes = [
            Outcome(c.id, c.attempt, 0, None, 0, ended_mono=ended, **_fence(c))
            for c in exchange.claims
        ]
    store.close()
    done.put((settled, ended))


def _fence(claim: Any) -> dict[str, Any]:
    """The claim's token and retry rules, as a runner passes them back in its outcome (none
    from a queuectl whose claims do not return them: the bench measures it as it is)."""
    from queuectl.lifecycle import Fence

    token = getattr(claim, "token", None)  # a queuectl before claim tokens has none
    given: dict[str, Any] = {} if token is None else {"token": token}
    max_retries = getattr(claim, "max_retries", None)
    if max_retries is not None:
        fenced = [claim.attempt, max_retries, claim.no_retry_exit_codes]
        if token is not None:
            fenced.insert(1, token)
        given["fence"] = Fence(*fenced)
    return given


def _collect(done: Any, workers: list[Any], timeout_s: float) -> list[Any]:
    """One message from each worker, failing fast when one of them died."""
    found: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while len(found) < len(workers):
        try:
            found.append(done.get(timeout=0.5))
        except queue.Empty:
            if any(w.exitcode not in (None, 0) for w in workers):
                raise RuntimeError("a settle-and-claim process failed (see its stderr)") from None
            if time.monotonic() > deadline:
                raise RuntimeError("the settle-and-claim processes did not finish") from None
    return found


def measure(
    kind: str, procs: int, batch: int, seconds: float, scratch: Scratch, counters: bool = True
) -> dict[str, Any]:
    """Jobs settled per second by `procs` processes settling-and-claiming on a fresh store
    (without the count triggers when `counters` is false)."""
    from queuectl import Queue

    # Enough jobs not to run dry below 20,000 jobs/s (twice the highest target).
    jobs = int(20_000 * seconds) + 1_000
    with fresh_store(kind, scratch) as target:
        with Queue(target) as jobs_queue:
            jobs_queue.enqueue_many([{"command": "true"} for _ in range(jobs)])
        if not counters:
            drop_count_triggers(kind, target)
        context = multiprocessing.get_context("spawn")
        done = context.Queue()
        go = context.Value("d", 0.0)
        workers = [
            context.Process(target=_loop, args=(target, i, batch, seconds, go, done))
            for i in range(procs)
        ]
        for worker in workers:
            worker.start()
        _collect(done, workers, 120)  # every process registered: they all start together
        start_at = go.value = time.monotonic()
        results = _collect(done, workers, seconds + 120)
        for worker in workers:
            worker.join(timeout=30)
        settled = sum(count for count, _ in results)
        took = max(ended for _, ended in results) - start_at
        ran_dry = settled >= jobs
    return {
        "procs": procs,
        "batch": batch,
        "jobs": settled,
        "seconds": round(took, 3),
        "per_s": round(settled / took),
        **({"ran_dry": True} if ran_dry else {}),
    }


def run(
    kinds: list[str], procs: list[int], batch: int, seconds: float, scratch: Scratch
) -> dict[str, Any]:
    """Every (backend, K) measured: {kind: {K: result}}."""
    return {
        kind: {str(k): measure(kind, k, batch, seconds, scratch) for k in procs} for kind in kinds
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.exchange", description=__doc__)
    parser.add_argument("--kinds", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--procs", type=int, nargs="+", default=[4, 16])
    parser.add_argument("--batch", type=int, default=BATCH, help="jobs claimed per exchange")
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument(
        "--counters-off", action="store_true", help="each K also without the count triggers"
    )
    args = parser.parse_args(argv)
    scratch = Scratch()
    try:
        for kind in args.kinds:
            for k in args.procs:
                for counters in (True, False) if args.counters_off else (True,):
                    cell = measure(kind, k, args.batch, args.seconds, scratch, counters)
                    print(
                        f"{kind:<9} K={k:<3} {cell['per_s']:>8,} jobs/s "
                        f"({cell['jobs']:,} jobs in {cell['seconds']:.2f}s, "
                        f"{args.batch} per exchange)"
                        + ("" if counters else " without the count triggers")
                        + (" (ran dry)" if cell.get("ran_dry") else ""),
                        flush=True,
                    )
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
