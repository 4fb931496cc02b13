"""Commands that act on jobs before they run: hold, release, edit."""

from __future__ import annotations

import sys
from typing import Any

import click

from queuectl.cli import Session, complete
from queuectl.cli.params import JOB_REF, UTF8

#: The options of `edit` that `none` clears.
CLEARED = frozenset({"timeout", "memory", "cpus", "max_procs"})


def _targets(job_ids: tuple[str, ...], queue: str | None, batch: str | None, verb: str) -> None:
    if sum(map(bool, (job_ids, queue is not None, batch is not None))) > 1:
        raise click.UsageError("give job ids, --queue or --batch, not two of them")
    if not job_ids and queue is None and batch is None:
        raise click.UsageError(f"give the ids of the jobs to {verb}, --queue Q or --batch B")


@click.command()
@click.argument("job_ids", nargs=-1, metavar="ID...", type=JOB_REF, shell_complete=complete.job_ids)
@click.option(
    "--queue",
    "-q",
    type=UTF8,
    help="Every pending or failed job of this queue.",
    shell_complete=complete.queues,
)
@click.option("--batch", metavar="NAME", help="Every pending or failed job of this batch.")
@click.pass_obj
def hold(session: Session, job_ids: tuple[str, ...], queue: str | None, batch: str | None) -> None:
    """Hold waiting jobs: no runner takes them until `release`.

    A job stays pending or failed while held. Holding a running or finished job is refused
    (exit 1), and then none of those named is held.
    """
    _targets(job_ids, queue, batch, "hold")
    if batch is not None:
        held = session.queue.hold_batch(batch)
        click.echo(f"held {held} job{'s' if held != 1 else ''} of batch {batch!r}", err=True)
        return
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
@click.option("--batch", metavar="NAME", help="Every held job of this batch.")
@click.pass_obj
def release(
    session: Session, job_ids: tuple[str, ...], queue: str | None, batch: str | None
) -> None:
    """Release held jobs: runners may take them again (at once if they are due)."""
    _targets(job_ids, queue, batch, "release")
    if batch is not None:
        done = session.queue.release_batch(batch)
        click.echo(f"released {done} job{'s' if done != 1 else ''} of batch {batch!r}", err=True)
        return
    if queue is not None:
        done = session.queue.release_queue(queue)
        click.echo(f"released {done} job{'s' if done != 1 else ''} of queue {queue!r}", err=True)
        return
    jobs = session.queue.release(*dict.fromkeys(job_ids))
    for job in jobs:
        click.echo(f"released {job.id} ({job.state})", err=True)


@click.command()
@click.argument("job_id", metavar="ID", type=JOB_REF, shell_complete=complete.job_ids)
@click.option("--command", "-c", help="The new shell command.")
@click.option("--priority", "-p", type=int, help="Higher runs first.")
@click.option(
    "--queue", "-q", type=UTF8, help="Move it to this queue.", shell_complete=complete.queues
)
@click.option("--delay", help="Start no sooner than this from now (10s, 2h...).")
@click.option("--run-at", help="Start no sooner than this ISO-8601 time (local unless offset).")
@click.option(
    "--env", "env_pairs", multiple=True, metavar="K=V", help="Set a variable (repeatable)."
)
@click.option("--timeout", help="Kill an attempt after this long (30s, 5m...; none: the default).")
@click.option("--max-retries", type=int, help="Retries after the first attempt.")
@click.option(
    "--lock", "lock_key", metavar="KEY", help="Never run while another job holding KEY runs."
)
@click.option(
    "--after",
    multiple=True,
    metavar="ID",
    shell_complete=complete.job_ids,
    help="Run after this job completed (repeatable; replaces its dependencies).",
)
@click.option("--expires", metavar="D|TIME", help="Cancel it if not started within D or by TIME.")
@click.option("--memory", metavar="SIZE|none", help="Its memory limit (512M, 4G; none: clear it).")
@click.option("--cpus", metavar="N|none", help="Its CPU limit, in CPUs (1.5; none: clear it).")
@click.option("--max-procs", metavar="N|none", help="Its process limit (none: clear it).")
@click.pass_obj
def edit(session: Session, /, job_id: str, **options: Any) -> None:
    """Change a job that waits (pending or failed), before a runner takes it.

    The change is atomic: if a runner claimed the job meanwhile, nothing changes and the exit
    code is 1. With no option, on a terminal, $EDITOR opens on the command.
    """
    from queuectl.cli.params import local_expires, local_run_at, parse_env

    fields: dict[str, Any] = {
        "command": options["command"],
        "priority": options["priority"],
        "queue": options["queue"],
        "delay": options["delay"],
        "run_at": local_run_at(options["run_at"]),
        "max_retries": options["max_retries"],
        "lock": options["lock_key"],
        "expires": local_expires(options["expires"]),
    }
    if options["env_pairs"]:
        fields["env"] = parse_env(options["env_pairs"])
    if options["after"]:
        fields["depends_on"] = list(options["after"])
    for name in ("timeout", "memory", "cpus", "max_procs"):
        if options[name] is not None:
            fields[name] = None if options[name] == "none" else options[name]
    fields = {k: v for k, v in fields.items() if v is not None or k in CLEARED}
    if not fields:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise click.UsageError("give what to change (--command C, --priority P...)")
        current = session.queue.get(job_id).command
        written = click.edit(current + "\n", require_save=True)
        if written is None or written.strip() == current.strip():
            click.echo(f"{job_id} unchanged", err=True)
            return
        fields["command"] = written.rstrip("\n")
    job = session.queue.edit(job_id, **fields)
    said = ", ".join(sorted(fields))
    click.echo(f"edited {job.id} ({said})", err=True)
