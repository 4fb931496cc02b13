"""Commands that watch jobs over time: `logs --follow` and `wait`."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, BinaryIO

import click

from queuectl.durations import parse_duration
from queuectl.errors import NotFoundError
from queuectl.models import CANCELLED, DEAD, FINISHED_STATES, PENDING, Job
from queuectl.store import Output

if TYPE_CHECKING:
    from queuectl.queue import Queue

POLL_S = 0.2
#: How often a watcher asks again whether a runner serves the jobs it waits for.
CHECK_RUNNERS_S = 2.0


class RunnerCheck:
    """Says once per queue, on stderr, that no runner serves it (what `explain` finds)."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue
        self.told: set[str] = set()
        self.checked_at = -CHECK_RUNNERS_S

    def __call__(self, jobs: list[Job]) -> None:
        if time.monotonic() - self.checked_at < CHECK_RUNNERS_S:
            return
        self.checked_at = time.monotonic()
        from queuectl.explain import explain_job

        first_of_queue: dict[str, str] = {}
        for job in jobs:
            if not job.finished and job.queue not in self.told:
                first_of_queue.setdefault(job.queue, job.id)
        for name, job_id in first_of_queue.items():
            if explain_job(self.queue, job_id)["reason"] == "no_runner":
                self.told.add(name)
                hint = "" if name == "default" else f" --queue {name}"
                click.echo(
                    f"note: no runner serving queue '{name}' is up, so its jobs wait; "
                    f"start one with: queuectl worker start{hint}",
                    err=True,
                )


def follow_output(queue: Queue, job_id: str, out: BinaryIO) -> int:
    """Print the job's output as it grows until the job is finished, attempt after attempt
    (each announced on stderr); 1 if it ended dead or cancelled.

    Each attempt is followed by offset (bytes written so far), so every poll costs one read of
    the kept tail, and no line is repeated or reordered; bytes that left the kept tail before
    a poll saw them are reported as skipped.
    """
    attempt = 0
    offset = 0  # bytes of this attempt written out so far
    check = RunnerCheck(queue)
    report: dict[str, Any] | None = None  # the progress last shown
    while True:
        job = queue.get(job_id)
        finished = job.finished
        if not finished:
            check([job])
            report = _show_progress(job, report)
        try:
            kept = queue.attempt_output(job_id)
        except NotFoundError:
            if not finished:
                raise
            # Seen finished, then deleted by retention before its output was read: it ended
            # all the same, and its output is gone with it.
            kept = Output(attempt, b"", offset)
        if kept.attempt != attempt and (kept.data or kept.dropped or kept.attempt > attempt):
            if kept.attempt and (attempt or kept.attempt > 1):
                click.echo(f"--- attempt {kept.attempt}", err=True)
            attempt, offset = kept.attempt, 0
        start = offset - kept.dropped
        if start < 0:
            click.echo(f"--- {-start} bytes went by unseen", err=True)
            start = 0
        if start < len(kept.data):
            out.write(kept.data[start:])
            out.flush()
        offset = kept.dropped + len(kept.data)
        if finished:
            if job.state in (DEAD, CANCELLED):
                click.echo(f"{job.id} ended {job.state} ({job.last_error})", err=True)
                return 1
            return 0
        time.sleep(POLL_S)


def _show_progress(job: Job, shown: dict[str, Any] | None) -> dict[str, Any] | None:
    """Say the job's progress on stderr when it moved (between output, as its own line)."""
    report = job.progress_dict()
    if report is not None and report != shown:
        from queuectl.progress import text

        click.echo(f"--- progress {text(report)}", err=True)
    return report


def wait_for(queue: Queue, job_ids: list[str], timeout: str | None) -> int:
    """Block until the jobs are finished; 1 if one ended dead or cancelled, 124 on timeout."""
    limit_s = None if timeout is None else parse_duration(timeout, "--timeout")
    started = time.monotonic()
    watched = list(dict.fromkeys(job_ids))
    for job_id in watched:
        queue.get(job_id)  # unknown ids are an error before any waiting
    progress = _Progress(sys.stderr.isatty())
    check = RunnerCheck(queue)
    # A job seen finished stays so for the rest of the wait: retention may delete it meanwhile.
    ended: dict[str, Job] = {}
    try:
        while True:
            if watched:
                jobs = [queue.get(job_id) for job_id in watched if job_id not in ended]
                check(jobs)
                ended.update((job.id, job) for job in jobs if job.state in FINISHED_STATES)
                total, finished = len(watched), len(ended)
                failed = [j for j in watched if j in ended and ended[j].state in (DEAD, CANCELLED)]
            else:
                counts = queue.status()["counts"]
                finished = sum(counts[s] for s in FINISHED_STATES)
                total = sum(counts.values())
                failed = (
                    [f"{counts[DEAD] + counts[CANCELLED]} jobs"]
                    if counts[DEAD] + counts[CANCELLED]
                    else []
                )
                if finished != total:
                    check(queue.list(state=PENDING, limit=100))
            progress.update(finished, total)
            if finished == total:
                break
            if limit_s is not None and time.monotonic() - started >= limit_s:
                progress.close()
                click.echo(
                    f"error: timed out after {timeout}: {total - finished} job(s) not finished",
                    err=True,
                )
                return 124
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
