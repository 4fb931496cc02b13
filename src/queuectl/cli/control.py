"""Commands that act on jobs before they run: hold, release, edit."""

from __future__ import annotations

import click

from queuectl.cli import Session, complete
from queuectl.cli.jobs import JOB_REF, UTF8


def _targets(job_ids: tuple[str, ...], queue: str | None, verb: str) -> None:
    if job_ids and queue is not None:
        raise click.UsageError("give job ids or --queue, not both")
    if not job_ids and queue is None:
        raise click.UsageError(f"give the ids of the jobs to {verb}, or --queue Q")


@click.command()
@click.argument("job_ids", nargs=-1, metavar="ID...", type=JOB_REF, shell_complete=complete.job_ids)
@click.option(
    "--queue",
    "-q",
    type=UTF8,
    help="Every pending or failed job of this queue.",
    shell_complete=complete.queues,
)
@click.pass_obj
def hold(session: Session, job_ids: tuple[str, ...], queue: str | None) -> None:
    """Hold waiting jobs: no runner takes them until `release`.

    A job stays pending or failed while held. Holding a running or finished job is refused
    (exit 1), and then none of those named is held.
    """
    _targets(job_ids, queue, "hold")
    if queue is not None:
        held = session.queue.hold_queue(queue)
        click.echo(f"held {held} job{'s' if held != 1 else ''} of queue {queue!r}", err=True)
        return
    jobs = session.queue.hold(*dict.fromkeys(job_ids))
    for job in jobs:
        click.echo(f"held {job.id} ({job.state})", err=True)


@click.command()
@click.argument("job_ids", nargs=-1, metavar="ID...", type=JOB_REF, shell_complete=complete.job_ids)
@click.option(
    "--queue",
    "-q",
    type=UTF8,
    help="Every held job of this queue.",
    shell_complete=complete.queues,
)
@click.pass_obj
def release(session: Session, job_ids: tuple[str, ...], queue: str | None) -> None:
    """Release held jobs: runners may take them again (at once if they are due)."""
    _targets(job_ids, queue, "release")
    if queue is not None:
        done = session.queue.release_queue(queue)
        click.echo(f"released {done} job{'s' if done != 1 else ''} of queue {queue!r}", err=True)
        return
    jobs = session.queue.release(*dict.fromkeys(job_ids))
    for job in jobs:
        click.echo(f"released {job.id} ({job.state})", err=True)
