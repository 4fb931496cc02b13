"""SPEC 9.7: the output a runner holds for a running job stays within about output_limit plus
1 MiB, however fast the job writes (it is kept in a memfd, whose pages no RSS shows: they are
measured from the file's allocated blocks, through /proc/RUNNER/fd)."""

from __future__ import annotations

import os
import time

from queuectl import Queue
from tests.support.runners import wait_until

MiB = 1 << 20


def held_output_bytes(pid: int) -> int:
    """Bytes of memory behind the runner's output files (memfds) right now."""
    total = 0
    folder = f"/proc/{pid}/fd"
    for name in os.listdir(folder):
        try:
            if not os.readlink(f"{folder}/{name}").startswith("/memfd:queuectl-output"):
                continue
            total += os.stat(f"{folder}/{name}").st_blocks * 512
        except OSError:
            continue  # closed meanwhile
    return total


def test_a_job_writing_a_gigabyte_holds_about_output_limit_plus_1_mib(
    queue: Queue, start_runner
) -> None:
    limit = queue.get_config("output_limit")
    job = queue.enqueue("yes | head -c 1G; echo the-end")
    runner = start_runner()
    peak = 0
    started = time.monotonic()
    while queue.get(job.id).state in ("pending", "processing"):
        peak = max(peak, held_output_bytes(runner.pid))
        assert time.monotonic() - started < 120, "the job did not finish"
        time.sleep(0.01)
    wait_until(lambda: queue.get(job.id).state == "completed", 5, "the job to complete")
    print(f"peak output held: {peak} bytes for output_limit {limit}")
    assert peak <= limit + MiB + 8192  # the tail, the slack, and alignment to pages
    kept = queue.attempt_output(job.id)
    assert kept.data.endswith(b"y\ny\nthe-end\n")
    assert len(kept.data) == limit
    assert kept.dropped > 1_000_000_000 - limit
