"""Commands that read jobs: list, show, logs, wait, explain."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from queuectl.cli import Session, complete
from queuectl.cli.params import (
    JOB_REF,
    UTF8,
    job_ids_argument,
    limit_option,
    queue_option,
    states_option,
)
from queuectl.models import Job

if TYPE_CHECKING:
    from queuectl.cli.render import JobFacts
    from queuectl.queue import Queue


@click.command("list")
@states_option("Only jobs in this state (repeatable: any of them; running = processing).")
@queue_option("Only jobs of this queue (repeatable: any of them).", multiple=True)
@limit_option(50, "At most this many (0 = all).")
@click.option(
    "--search",
    type=UTF8,
    help="Only jobs whose id starts with TEXT, or whose command or last error holds it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of jobs.")
@click.option("--held", is_flag=True, help="Only held jobs.")
@click.option("--batch", metavar="NAME", type=UTF8, help="Only jobs of this batch.")
@click.pass_obj
def list_jobs(
    session: Session,
    states: tuple[str, ...],
    queues: tuple[str, ...],
    limit: int,
    search: str | None,
    as_json: bool,
    held: bool,
    batch: str | None,
) -> None:
    """List jobs, newest first; the filters combine."""
    from queuectl.cli.render import print_jobs

    queue = session.existing_queue
    if search is not None:
        found = queue.search(search, states, queues, limit or None, batch=batch, held=held)
        print_jobs(found, as_json)
        return
    jobs = queue.list(state=states, queue=queues, limit=limit or None, batch=batch, held=held)
    print_jobs(jobs, as_json)
    if limit and len(jobs) == limit and not as_json and not held and batch is None:
        total = queue.count(states, queues)
        if total > limit:
            click.echo(f"{limit} of {total} shown; --limit 0 for all", err=True)


@click.command()
@click.argument("job_id", metavar="ID", type=JOB_REF, shell_complete=complete.job_ids)
@click.option("--json", "as_json", is_flag=True, help="Print the job as a JSON object.")
@click.pass_obj
def show(session: Session, job_id: str, as_json: bool) -> None:
    """Show one job: its state and why, command, attempts, times, then each attempt; --json
    for every field."""
    from queuectl.cli.render import print_json

    queue = session.existing_queue
    if as_json:
        print_json(queue.detail(job_id))
        return
    from queuectl.cli.render import print_history, print_job

    job = queue.get(job_id)
    print_job(job, job_facts(queue, job))
    print_history(queue.history(job_id))


#: `explain` reasons that the other lines of `show` already say.
_SAID_BY_SHOW = frozenset({"finished", "running", "waiting_for_run_at"})


def job_facts(queue: Queue, job: Job) -> JobFacts:
    """What `show` says of a job beyond its fields: why it waits, its dependencies' states,
    the size of its last output."""
    from queuectl.cli.render import JobFacts

    facts = JobFacts(now_ms=queue.now_ms())
    if job.state == "dead":
        facts.why = f"`queuectl dlq retry {job.id}` runs it again"
    elif job.state in ("pending", "failed", "processing"):
        from queuectl.explain import explain_job

        found = explain_job(queue, job.id)
        pending_later = found["reason"] == "waiting_for_run_at" and job.state == "pending"
        if found["state"] == job.state and (found["reason"] not in _SAID_BY_SHOW or pending_later):
            facts.why = _as_sentence(found["message"], job.id, job.made_by)
    if job.depends_on:
        facts.dependencies = queue.dependencies(job.id)
    facts.conditions = queue.conditions(job.id)
    if job.attempts or job.finished_at_ms is not None:
        kept = queue.attempt_output(job.id)
        if kept.attempt:
            facts.output = (kept.attempt, len(kept.data), kept.dropped)
    return facts


def _as_sentence(message: str, job_id: str, made_by: str | None) -> str:
    """`explain`'s message about the job shown: "It" for its id, without the hook that made
    it (a line of its own)."""
    if message.startswith(f"{job_id} "):
        message = "It " + message[len(job_id) + 1 :]
    if made_by is not None:
        message = message.removesuffix(f" It was made by {made_by}.")
    return message


@click.command()
@click.argument("job_id", metavar="ID", type=JOB_REF, shell_complete=complete.job_ids)
@click.option("--follow", "-f", is_flag=True, help="Stream the output until the job ends.")
@click.option(
    "--attempt",
    "-a",
    type=click.IntRange(min=1),
    help="The Nth attempt's output, counting every attempt the job made (default: the last).",
)
@click.option("--json", "as_json", is_flag=True, help="Print {id, attempt, output, truncated}.")
@click.pass_obj
def logs(session: Session, job_id: str, follow: bool, attempt: int | None, as_json: bool) -> None:
    """Print the job's captured output (stdout and stderr, interleaved)."""
    queue = session.existing_queue
    out = sys.stdout.buffer
    if follow and (attempt is not None or as_json):
        raise click.UsageError(
            "--follow streams the latest attempt as text, without --attempt or --json"
        )
    if as_json:
        from queuectl.cli.render import print_json

        kept = queue.attempt_output(job_id, attempt)
        print_json(
            {
                "id": job_id,
                "attempt": kept.attempt,
                "output": kept.shown().decode(errors="replace"),
                "truncated": kept.dropped > 0,
            }
        )
        return
    if not follow:
        out.write(queue.output(job_id, attempt))
        out.flush()
        if attempt is None:
            _say_if_never_run(queue, job_id)
        return
    from queuectl.cli.follow import follow_output

    sys.exit(follow_output(queue, job_id, out))


def _say_if_never_run(queue: Any, job_id: str) -> None:
    """An empty `logs` of a job that has not run yet says so, rather than nothing."""
    job = queue.get(job_id)
    if job.attempts == 0:
        why = f"; `queuectl explain {job_id}` says why" if job.state == "pending" else ""
        click.echo(f"{job_id} has not run ({job.state}){why}", err=True)


@click.command()
@job_ids_argument()
@click.option("--timeout", help="Give up after this long (exit 124).")
@click.option("--batch", metavar="NAME", help="Wait for every job of this batch.")
@click.pass_obj
def wait(
    session: Session, job_ids: tuple[str, ...], timeout: str | None, batch: str | None
) -> None:
    """Block until the jobs (default: all) are finished; exit 1 if any ended dead or cancelled."""
    from queuectl.cli.follow import wait_for

    if batch is not None:
        if job_ids:
            raise click.UsageError("give job ids or --batch, not both")
        from queuectl.cli.batch import wait_batch

        sys.exit(wait_batch(session.existing_queue, batch, timeout))

    sys.exit(wait_for(session.existing_queue, list(job_ids), timeout))


@click.command()
@click.argument("job_id", metavar="ID", type=JOB_REF, shell_complete=complete.job_ids)
@click.option("--json", "as_json", is_flag=True, help="Print the reason as JSON.")
@click.pass_obj
def explain(session: Session, job_id: str, as_json: bool) -> None:
    """Say why a job is or is not running now."""
    from queuectl.explain import explain_job

    reason = explain_job(session.existing_queue, job_id)
    if as_json:
        from queuectl.cli.render import print_json

        print_json(reason)
    else:
        click.echo(reason["message"])
