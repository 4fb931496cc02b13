"""Commands that act on jobs before they run: hold, release, edit."""

from __future__ import annotations

import sys
from typing import Any

import click

from queuectl.cli import Session, complete
from queuectl.cli.params import JOB_REF, UTF8, after_option, job_ids_argument, queue_option

#: The options of `edit` that `none` clears.
CLEARED = frozenset({"timeout", "memory", "cpus", "max_procs"})


def _hold_or_release(verb: str, done: str, whose: str, doc: str) -> click.Command:
    """The `hold` or `release` command: the jobs named (all or none), or every `whose` job
    of a --queue or a --batch."""

    @click.command(verb, help=doc)
    @job_ids_argument("ID...")
    @queue_option(f"Every {whose} job of this queue.")
    @click.option("--batch", metavar="NAME", help=f"Every {whose} job of this batch.")
    @click.option(
        "--state",
        "-s",
        "states",
        multiple=True,
        help="Only jobs in this state (pending or failed; repeatable): a filter.",
        shell_complete=complete.states,
    )
    @click.option(
        "--search",
        type=UTF8,
        help=f"{verb.capitalize()} every job whose id, command or last error has TEXT: a filter.",
    )
    @click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (a filter).")
    @click.pass_obj
    def command(
        session: Session,
        job_ids: tuple[str, ...],
        queue: str | None,
        batch: str | None,
        states: tuple[str, ...],
        search: str | None,
        yes: bool,
    ) -> None:
        if states or search is not None:
            if job_ids:
                raise click.UsageError("give job ids or a filter (--state, --search), not both")
            from queuectl.cli.bulk import bulk_change

            bulk_change(
                session, verb, done, states, queue, search, yes, held=verb == "release", batch=batch
            )
            return
        if sum(map(bool, (job_ids, queue is not None, batch is not None))) > 1:
            raise click.UsageError("give job ids, --queue or --batch, not two of them")
        if not job_ids and queue is None and batch is None:
            raise click.UsageError(f"give the ids of the jobs to {verb}, --queue Q or --batch B")
        for kind, name in (("queue", queue), ("batch", batch)):
            if name is not None:
                count = getattr(session.queue, f"{verb}_{kind}")(name)
                click.echo(
                    f"{done} {count} job{'s' if count != 1 else ''} of {kind} {name!r}", err=True
                )
                return
        for job in getattr(session.queue, verb)(*dict.fromkeys(job_ids)):
            click.echo(f"{done} {job.id} ({job.state})", err=True)

    return command


hold = _hold_or_release(
    "hold",
    "held",
    "pending or failed",
    """Hold waiting jobs: no runner takes them until `release`.

    A job stays pending or failed while held. Holding a running or finished job is refused
    (exit 1), and then none of those named is held. With a filter (--state, --search, with
    --queue or --batch), every matching job that waits is held, the others left as they are.
    """,
)
release = _hold_or_release(
    "release",
    "released",
    "held",
    """Release held jobs: runners may take them again (at once if they are due). With a filter
    (--state, --search, with --queue or --batch), every matching held job.""",
)


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
@after_option("--after", "Run after this job completed (repeatable; replaces its dependencies).")
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
