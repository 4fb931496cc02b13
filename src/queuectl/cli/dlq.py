"""The dead-letter queue: list, retry and purge dead jobs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from queuectl.cli import Group, Session, complete
from queuectl.cli.params import JOB_REF

if TYPE_CHECKING:
    from queuectl.queue import Queue


@click.group(cls=Group)
def dlq() -> None:
    """The dead-letter queue: jobs that failed every attempt."""


@dlq.command("list")
@click.option(
    "--limit", "-n", type=click.IntRange(min=0), default=0, help="At most this many (0 = all)."
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of jobs.")
@click.pass_obj
def dlq_list(session: Session, limit: int, as_json: bool) -> None:
    """Dead jobs with their last error."""
    from queuectl.cli.render import print_jobs

    print_jobs(
        session.existing_queue.list(state="dead", limit=limit or None), as_json, "dead-letter queue"
    )


@dlq.command("retry")
@click.argument(
    "job_ids", nargs=-1, metavar="ID...", type=JOB_REF, shell_complete=complete.dead_ids
)
@click.option("--all", "every", is_flag=True, help="Retry every dead job.")
@click.option(
    "--queue", "-q", help="Retry every dead job of this queue.", shell_complete=complete.queues
)
@click.option("--batch", metavar="NAME", help="Retry every dead job of this batch.")
@click.pass_obj
def dlq_retry(
    session: Session, job_ids: tuple[str, ...], every: bool, queue: str | None, batch: str | None
) -> None:
    """Move dead jobs back to pending, with attempts reset."""
    if batch is not None:
        if job_ids or every or queue is not None:
            raise click.UsageError("give the ids of dead jobs, --queue, --batch or --all")
        from queuectl.cli.bulk import progress_line

        with progress_line("retried", None) as progress:
            retried = session.queue.retry(progress=progress, batch=batch)
        for job_id in retried:
            click.echo(job_id)
        n = len(retried)
        click.echo(f"retried {n} job{'s' if n != 1 else ''} of batch {batch}", err=True)
        return
    if job_ids and (every or queue is not None):
        raise click.UsageError("give the ids of dead jobs or --queue/--all, not both")
    if not job_ids and not every and queue is None:
        raise click.UsageError("give the ids of dead jobs, --queue Q or --all")
    from queuectl.cli.bulk import progress_line

    with progress_line("retried", None) as progress:
        retried = session.queue.retry(*job_ids, all=every, queue=queue, progress=progress)
    for job_id in retried:
        click.echo(job_id)
    said = f"retried {len(retried)} job{'s' if len(retried) != 1 else ''}"
    if job_ids:  # named ones are all retried, or the command fails
        click.echo(said, err=True)
        return
    left = left_dead(session.queue, queue, set(retried))
    total = sum(len(ids) for ids in left.values())
    click.echo(f"{said}; {total:,} left dead" if total else said, err=True)
    for why, ids in left.items():
        click.echo(f"  {len(ids):,} {LEFT_BECAUSE[why][len(ids) != 1]}: {some(ids)}", err=True)


#: Ids named per reason a bulk retry left jobs dead; the rest are counted.
SHOWN_IDS = 3

#: Why a bulk retry left a dead job, for one job and for several.
LEFT_BECAUSE = {
    "dependency": (
        "depends on a job still dead or cancelled",
        "depend on jobs still dead or cancelled",
    ),
    "unique_key": ("has a unique key another job holds", "have a unique key another job holds"),
    "died": ("died while the retry ran", "died while the retry ran"),
}


def some(ids: list[str]) -> str:
    """The first few ids, and how many more."""
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown if len(ids) <= SHOWN_IDS else f"{shown} and {len(ids) - SHOWN_IDS:,} more"


def left_dead(queue: Queue, name: str | None, retried: set[str]) -> dict[str, list[str]]:
    """The dead jobs a bulk retry left (of queue `name`, None: of every queue), by why (a key
    of LEFT_BECAUSE), oldest first: the store leaves one whose dependency is dead or cancelled
    (it would wait forever) and one whose unique key another job holds, and says only which
    it retried; so the others are read afterwards, and one that died meanwhile told apart."""
    reasons: dict[str, list[str]] = {}
    for job in reversed(queue.list(state="dead", queue=name)):
        if job.id in retried:  # run again, and dead again already
            continue
        deps = queue.dependencies(job.id) if job.depends_on else {}
        stuck = [dep for dep, state in deps.items() if state in ("dead", "cancelled")]
        if stuck:
            why, shown = "dependency", f"{job.id} (after {', '.join(stuck)})"
        else:
            why, shown = "unique_key" if job.unique_key is not None else "died", job.id
        reasons.setdefault(why, []).append(shown)
    return reasons


@dlq.command("purge")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def dlq_purge(session: Session, yes: bool) -> None:
    """Delete every dead job (also: dlq clear)."""
    from queuectl.cli.bulk import confirm, progress_line

    queue = session.queue
    if not yes:
        dead = sum(q["counts"]["dead"] for q in queue.queues().values())
        if not dead:
            click.echo("the dead-letter queue is empty", err=True)
            return
        confirm(yes, f"delete {dead:,} dead job{'s' if dead != 1 else ''}?")
    with progress_line("deleted", None) as progress:
        count = queue.purge("dead", progress=progress)
    click.echo(f"purged {count} dead job{'s' if count != 1 else ''}", err=True)


dlq.add_command(dlq_purge, "clear")
