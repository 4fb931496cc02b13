"""Commands that watch jobs over time: `logs --follow` and `wait`."""

from __future__ import annotations

import sys
import time
from typing import Any, BinaryIO

import click

from queuectl.durations import parse_duration
from queuectl.errors import QueuectlError
from queuectl.models import CANCELLED, DEAD, FINISHED_STATES

POLL_S = 0.2


def follow_output(queue: Any, job_id: str, out: BinaryIO) -> None:
    """Print the job's output as it grows, until the job is finished."""
    shown = b""
    while True:
        finished = queue.get(job_id).finished
        data = queue.output(job_id)
        if data.startswith(shown):
            out.write(data[len(shown) :])
        else:
            # the kept tail moved on (output_limit) or a new attempt began: show what is new
            overlap = _overlap(shown, data)
            out.write(data[overlap:])
        out.flush()
        shown = data
        if finished:
            return
        time.sleep(POLL_S)


def _overlap(old: bytes, new: bytes) -> int:
    """Length of the longest suffix of `old` that is a prefix of `new`."""
    for size in range(min(len(old), len(new)), 0, -1):
        if old.endswith(new[:size]):
            return size
    return 0


def wait_for(queue: Any, job_ids: list[str], timeout: str | None) -> int:
    """Block until the jobs are finished; 1 if one ended dead or cancelled, or on timeout."""
    limit_s = None if timeout is None else parse_duration(timeout, "--timeout")
    started = time.monotonic()
    watched = list(dict.fromkeys(job_ids))
    for job_id in watched:
        queue.get(job_id)  # unknown ids are an error before any waiting
    progress = _Progress(sys.stderr.isatty())
    try:
        while True:
            if watched:
                jobs = [queue.get(job_id) for job_id in watched]
                done = [job for job in jobs if job.state in FINISHED_STATES]
                total, finished = len(jobs), len(done)
                failed = [job.id for job in done if job.state in (DEAD, CANCELLED)]
            else:
                counts = queue.status()["counts"]
                finished = sum(counts[s] for s in FINISHED_STATES)
                total = sum(counts.values())
                failed = (
                    [f"{counts[DEAD] + counts[CANCELLED]} jobs"]
                    if counts[DEAD] + counts[CANCELLED]
                    else []
                )
            progress.update(finished, total)
            if finished == total:
                break
            if limit_s is not None and time.monotonic() - started >= limit_s:
                progress.close()
                raise QueuectlError(
                    f"timed out after {timeout}: {total - finished} job(s) not finished"
                )
            time.sleep(POLL_S)
    finally:
        progress.close()
    if failed:
        click.echo(f"finished; dead or cancelled: {', '.join(failed)}", err=True)
        return 1
    click.echo(f"finished: {total} job{'s' if total != 1 else ''}", err=True)
    return 0


class _Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from rich.progress import Progress

            self.bar = Progress(transient=True, console=None)
            self.bar.start()
            self.task = self.bar.add_task("waiting", total=None)

    def update(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
