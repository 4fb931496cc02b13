"""Attempts run through the executor and the runner's tree, in a process of their own (it
becomes a subreaper and makes cgroups, which the test process must not): JSON in, JSON out."""

from __future__ import annotations

import json
import os
import sys
import time

from queuectl.runner import executor
from queuectl.runner.tree import open_tree
from queuectl.store import Claim


def run(batches: list[list[dict[str, object]]]) -> dict[str, object]:
    """Run each batch of jobs (command, memory, cpus, max_procs) at once, one batch after
    another, in one tree."""
    tree = open_tree(set())
    executor.probe(tree)
    results: list[dict[str, object]] = []
    try:
        for jobs in batches:
            attempts = []
            for index, job in enumerate(jobs):
                claim = Claim(
                    id=f"job-{len(results) + index}",
                    attempt=1,
                    token=1,
                    command=str(job["command"]),
                    cwd=os.getcwd(),
                    env={},
                    timeout=None,
                    queue="default",
                    priority=0,
                    memory=job.get("memory"),  # type: ignore[arg-type]
                    cpus=job.get("cpus"),  # type: ignore[arg-type]
                    max_procs=job.get("max_procs"),  # type: ignore[arg-type]
                )
                attempts.append(
                    (executor.start(claim, dict(os.environ), 0, tree), time.monotonic())
                )
            ended: dict[int, dict[str, object]] = {}
            while len(ended) < len(attempts):
                for index, (attempt, began) in enumerate(attempts):
                    if index in ended:
                        continue
                    executor.pump(attempt, 1 << 20, 1 << 20)
                    if attempt.poll():
                        executor.pump(attempt, 1 << 20, 1 << 20)
                        executor.close_pipe(attempt)
                        executor.end(attempt)
                        ended[index] = {
                            "exit_code": attempt.exit_code,
                            "error": attempt.error,
                            "cpu_ms": attempt.cpu_ms,
                            "max_rss_bytes": attempt.max_rss_bytes,
                            "wall_ms": round((time.monotonic() - began) * 1000),
                            "output": executor.tail(attempt, 1 << 16).decode(errors="replace"),
                        }
                        executor.close(attempt)
                tree.poll(time.monotonic())
                time.sleep(0.002)
            results.extend(ended[index] for index in range(len(attempts)))
    finally:
        tree.close()
    return {
        "kind": tree.kind,
        "enforces": tree.limiter.enforces,
        "v2_limits": sorted(tree.limiter.v2_names),
        "attempts": results,
    }


if __name__ == "__main__":
    request = json.load(sys.stdin)
    print(json.dumps(run(request["batches"])))
