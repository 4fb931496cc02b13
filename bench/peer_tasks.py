"""The task the peers run: a shell command through subprocess, as queuectl runs it.

Returns the wall-clock instant the task began, so latency is measured the same way for every
peer: from just before the enqueue call to the start of the task, on one host's clock.
"""

from __future__ import annotations

import subprocess
import time


def run_command(command: str) -> float:
    started = time.time()
    subprocess.run(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, check=False)
    return started
