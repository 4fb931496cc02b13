"""The client side of a measurement, run by the subject's own Python (`python -P probe.py ...`).

A subject is an installed queuectl: this tree's, or a release's in its own virtual environment
(bench/against.py). Whatever touches its store runs here, with its `queuectl`, so one run can
measure two versions whose schemas differ. Only the API every release has is used (`Queue`,
`enqueue`, `enqueue_many`, `get`, `runners`, the job's `*_at_ms`), and only the standard
library beside it: this file is not imported from the `bench` package. It prints one JSON
value on stdout.

    probe.py init TARGET                          create or migrate the store
    probe.py runner-up TARGET PID TIMEOUT_S       wait until runner PID is registered
    probe.py drain TARGET N TIMEOUT_S             bulk enqueue of N `true`, seconds until done
    probe.py one-by-one TARGET SAMPLES PAUSE_S [QUEUECTL]
        `true` jobs one at a time into idle runners, through Queue.enqueue or, given the
        `queuectl` executable, through `queuectl enqueue`: each job's enqueue-to-start
        (started_at - created_at) and own wall (finished_at - started_at), in ms
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
import uuid
from typing import Any

from queuectl import Queue


def wait_until(check: Any, timeout_s: float, interval_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)
    return True


def init(target: str) -> None:
    Queue(target).close()


def runner_up(target: str, pid: int, timeout_s: float) -> bool:
    with Queue(target) as queue:
        return wait_until(lambda: any(r.pid == pid for r in queue.runners()), timeout_s, 0.02)


def drain(target: str, n: int, timeout_s: float) -> dict[str, Any]:
    """Seconds from the bulk enqueue of N `true` jobs until every one has completed.

    Progress is one lookup per job, in order: a count over the store would read every finished
    row, and the probe's own polling would take a core from the runner it measures.
    """
    with Queue(target) as queue:
        started = time.perf_counter()
        ids = [job.id for job in queue.enqueue_many([{"command": "true"} for _ in range(n)])]
        done = 0
        while True:
            while done < n and queue.get(ids[done]).state == "completed":
                done += 1
            elapsed = time.perf_counter() - started
            if done == n:
                return {"seconds": elapsed}
            if elapsed > timeout_s:
                return {
                    "timeout": f"{done}/{n} done after {elapsed:.0f}s",
                    "done": done,
                    "total": n,
                }
            time.sleep(0.01)


def one_by_one(target: str, samples: int, pause_s: float, cli: str | None) -> dict[str, Any]:
    with Queue(target) as queue:
        ids = []
        for _ in range(samples):
            if cli is None:
                ids.append(queue.enqueue("true").id)
            else:
                job_id = f"probe-{uuid.uuid4().hex}"
                subprocess.run(
                    [cli, "--db", target, "enqueue", json.dumps({"id": job_id, "command": "true"})],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    check=True,
                )
                ids.append(job_id)
            time.sleep(pause_s * (0.75 + random.random() / 2))  # no lockstep with any timer
        if not wait_until(lambda: all(queue.get(i).finished_at_ms for i in ids), 30, 0.02):
            raise SystemExit("the jobs did not all finish within 30 s")
        jobs = [queue.get(i) for i in ids]
    return {
        "start_ms": [job.started_at_ms - job.created_at_ms for job in jobs],
        "wall_ms": [job.finished_at_ms - job.started_at_ms for job in jobs],
    }


def main(argv: list[str]) -> Any:
    command, target, *rest = argv
    if command == "init":
        return init(target)
    if command == "runner-up":
        return runner_up(target, int(rest[0]), float(rest[1]))
    if command == "drain":
        return drain(target, int(rest[0]), float(rest[1]))
    if command == "one-by-one":
        return one_by_one(target, int(rest[0]), float(rest[1]), rest[2] if rest[2:] else None)
    raise SystemExit(f"unknown probe command {command!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
