"""Commands that change many jobs at once: cancel, requeue, purge; and what every such
command shares: the question before (`confirm`) and the progress line during."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click

from queuectl.cli import Session, complete
from queuectl.cli.params import (
    UTF8,
    job_ids_argument,
    queue_option,
    states_option,
)
from queuectl.models import CANCELLED


@click.command()
@job_ids_argument()
@queue_option("Every pending, failed and running job of this queue.")
@states_option("With --queue or --search: only jobs in this state (repeatable).")
@click.option("--search", type=UTF8, help="Every job whose id, command or last error has TEXT.")
@click.option("--all", "every", is_flag=True, help="Every pending, failed and running job.")
@click.option("--batch", metavar="NAME", help="Every pending, failed and running job of a batch.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (--queue, --all).")
@click.pass_obj
def cancel(
    session: Session,
    job_ids: tuple[str, ...],
    queue: str | None,
    states: tuple[str, ...],
    search: str | None,
    every: bool,
    batch: str | None,
    yes: bool,
) -> None:
    """Cancel pending, failed or running jobs (a running command is killed)."""
    if batch is not None:
        if job_ids or queue is not None or every or states or search is not None:
            raise click.UsageError("give job ids, --queue, --batch or --all, not several")
        with progress_line("cancelled", session.queue.batch(batch)["total"]) as progress:
            done = session.queue.cancel_all(progress=progress, batch=batch)
        click.echo(f"cancelled {done} job{'s' if done != 1 else ''} of batch {batch}", err=True)
        return
    if states or search is not None:
        if job_ids or every:
            raise click.UsageError(
                "give job ids, --all or a filter (--state, --search), not several"
            )
        bulk_change(session, "cancel", "cancelled", states, queue, search, yes)
        return
    if job_ids and (queue is not None or every):
        raise click.UsageError("give job ids, --queue or --all, not several")
    if queue is not None and every:
        raise click.UsageError("give --queue or --all, not both")
    if not job_ids and queue is None and not every:
        raise click.UsageError("give the ids of the jobs to cancel, --queue Q or --all")
    if job_ids:
        # Cancelling twice asks for what already holds: said, not refused.
        ids = list(dict.fromkeys(job_ids))
        already = [i for i in ids if session.queue.get(i).state == CANCELLED]
        wanted = [i for i in ids if i not in already]
        for job in session.queue.cancel(*wanted) if wanted else ():
            click.echo(f"cancelled {job.id} (was {job.state})", err=True)
        for job_id in already:
            click.echo(f"{job_id} was already cancelled", err=True)
        return
    if queue is not None:
        from queuectl.models import validate_id

        validate_id(queue, "queue")  # no such queue can exist: refused, not "nothing to cancel"
    opened = session.queue
    active = ("pending", "failed", "processing")
    count = opened.count(active, queue)
    where = "every queue" if queue is None else f"queue {queue!r}"
    if not count:
        click.echo(f"nothing to cancel in {where}", err=True)
        return
    if not yes and sys.stdin.isatty():
        confirm(yes, f"cancel {count} job{'s' if count != 1 else ''} of {where}?")
    with progress_line("cancelled", count) as progress:
        cancelled = opened.cancel_all(queue, progress=progress)
    click.echo(f"cancelled {cancelled} job{'s' if cancelled != 1 else ''}", err=True)


@click.command()
@job_ids_argument()
@states_option("Every job in this state (repeatable).")
@queue_option("Every job of this queue (repeatable).", multiple=True)
@click.option("--search", type=UTF8, help="Every job whose id, command or last error has TEXT.")
@click.option("--batch", metavar="NAME", help="Every such job of this batch.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (a filter).")
@click.pass_obj
def requeue(
    session: Session,
    job_ids: tuple[str, ...],
    states: tuple[str, ...],
    queues: tuple[str, ...],
    search: str | None,
    batch: str | None,
    yes: bool,
) -> None:
    """Run completed, dead or cancelled jobs again from their first attempt (history kept);
    a failed job waiting for its retry runs at once. By ids, or every job a filter matches
    (--state, --queue, --search), those in another state left as they are."""
    if batch is not None:
        if job_ids or states or queues or search is not None:
            raise click.UsageError("give job ids, a filter or --batch, not several")
        for job_id in session.queue.requeue(batch=batch):
            click.echo(job_id)
        return
    filtered = bool(states or queues or search is not None)
    if job_ids and filtered:
        raise click.UsageError("give job ids or a filter (--state, --queue, --search), not both")
    if not job_ids and not filtered:
        raise click.UsageError(
            "give the ids of the jobs to run again, or --state/--queue/--search/--batch"
        )
    if filtered:
        bulk_change(session, "retry", "requeued", states, queues, search, yes)
        return
    for job_id in session.queue.requeue(*job_ids):
        click.echo(job_id)


def bulk_change(
    session: Session,
    action: str,
    done: str,
    states: tuple[str, ...],
    queues: str | tuple[str, ...] | None,
    search: str | None,
    yes: bool,
    held: bool = False,
    batch: str | None = None,
) -> None:
    """`action` on every job the filter matches (`held`: only held ones; of `batch` if
    given), after a question with their count (on a terminal; --yes elsewhere), with a
    progress line; says how many were changed."""
    queue = session.queue
    counted = queue.bulk(action, states, queues, search, batch=batch, held=held, dry_run=True)[
        "matched"
    ]
    if not counted:
        click.echo("no job matches: nothing to do", err=True)
        return
    if not yes and sys.stdin.isatty():
        verb = "run again" if action == "retry" else action
        confirm(yes, f"{verb} the {counted:,} job{'s' if counted != 1 else ''} that match?")
    with progress_line(done, counted) as progress:
        shown = None if progress is None else (lambda matched, changed: progress(changed))
        found = queue.bulk(action, states, queues, search, batch=batch, held=held, progress=shown)
    left = found["matched"] - found["changed"]
    said = f"{done} {found['changed']:,} job{'s' if found['changed'] != 1 else ''}"
    click.echo(
        f"{said}; {left:,} matched in a state it does not apply to" if left else said, err=True
    )


@click.command()
@click.option(
    "--state",
    "-s",
    required=True,
    help="completed, dead or cancelled.",
    shell_complete=complete.finished_states,
)
@click.option(
    "--older-than",
    default="0s",
    show_default=True,
    help="Only jobs finished longer ago (7d, 12h...).",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(session: Session, state: str, older_than: str, yes: bool) -> None:
    """Delete finished jobs in a state, finished longer ago than --older-than."""
    from queuectl.admin import purgeable_states
    from queuectl.durations import parse_duration

    purgeable_states(state)
    age_s = parse_duration(older_than, "older-than")
    queue = session.queue
    if not yes:
        refuse_without_terminal()
        # Those finished within --older-than stay: counted apart, they are taken off.
        count = queue.count(state) - (queue.finished_since(age_s)[state] if age_s else 0)
        older = f" finished more than {older_than} ago" if age_s else ""
        if count <= 0:
            click.echo(f"no {state} jobs{older}: nothing to purge", err=True)
            return
        confirm(yes, f"delete {count:,} {state} job{'s' if count != 1 else ''}{older}?")
    with progress_line("deleted", None) as progress:
        count = queue.purge(state, older_than, progress=progress)
    click.echo(f"purged {count} job{'s' if count != 1 else ''}", err=True)


@contextmanager
def progress_line(done: str, total: int | None) -> Iterator[Callable[[int], None] | None]:
    """A bulk change's progress (`<done> N [of TOTAL] jobs`) on one line of stderr, rewritten
    as each batch commits and erased at the end; on a terminal only (None elsewhere: nothing
    on a pipe or in a log)."""
    if not sys.stderr.isatty():
        yield None
        return
    of = "" if total is None else f" of {total:,}"

    def show(count: int) -> None:
        click.echo(f"\r{done} {count:,}{of} jobs\x1b[K", err=True, nl=False)

    try:
        yield show
    finally:
        click.echo("\r\x1b[K", err=True, nl=False)


def refuse_without_terminal() -> None:
    """Insist on --yes where no one can be asked, rather than guess."""
    if not sys.stdin.isatty():
        raise click.UsageError("refusing to delete without --yes (stdin is not a terminal)")


def confirm(yes: bool, question: str) -> None:
    """Ask on a terminal; without one, insist on --yes rather than guess."""
    if yes:
        return
    refuse_without_terminal()
    if not click.confirm(question, default=False, err=True):
        raise click.Abort()
