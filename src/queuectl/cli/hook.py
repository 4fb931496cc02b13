"""Hooks: add, list, remove; a job's end enqueues a hook job."""

from __future__ import annotations

from typing import Any

import click

from queuectl.cli import Group, Session, complete
from queuectl.cli.params import enqueue_options, listing, removal, template_job


@click.group(cls=Group)
def hook() -> None:
    """Hooks: when a job completes, fails, dies or is cancelled, enqueue another job."""


@hook.command("add")
@click.argument("name")
@click.argument("job_json", required=False, metavar="[JSON]")
@click.option(
    "--on",
    "on",
    required=True,
    metavar="EVENT[,EVENT...]",
    help="completed, failed (will be retried), dead, cancelled.",
)
@click.option("--command", "-c", "command", help="The shell command to run.")
@enqueue_options
@click.option("--job-queue", help="The queue of the hook jobs (default: default).")
@click.pass_obj
def hook_add(
    session: Session,
    /,
    name: str,
    job_json: str | None,
    on: str,
    command: str | None,
    job_queue: str | None,
    **options: Any,
) -> None:
    """Add (or replace) hook NAME: --on EVENTS (--command CMD | JSON) [--queue Q].

    The hook job sees QUEUECTL_EVENT, QUEUECTL_EVENT_JOB, QUEUECTL_EVENT_QUEUE,
    QUEUECTL_EVENT_ATTEMPT, QUEUECTL_EVENT_EXIT_CODE and QUEUECTL_EVENT_ERROR.
    """
    only_queue = options.pop("queue")  # --queue filters the events; --job-queue places the job
    job = template_job("hook", command, job_json, options)
    if job_queue is not None:
        job["queue"] = job_queue
    from queuectl.hook import validate_hook

    validate_hook(name, on, only_queue, job)  # bad input is refused before the store opens
    added = session.queue.add_hook(name, on, job, queue=only_queue)
    where = f" of queue {added.queue}" if added.queue else ""
    click.echo(f"hook {added.name}: on {','.join(added.events)}{where}", err=True)


for _param in hook_add.params:
    if _param.name == "queue" and isinstance(_param, click.Option):
        _param.help = "Only jobs of this queue fire the hook (default: every queue)."


@listing(hook, "Print the hooks as JSON.")
def hook_list(session: Session, as_json: bool) -> None:
    """The hooks: their events, queue and command."""
    from queuectl.cli.render import print_listing
    from queuectl.shapes import hook_dict

    hooks = [hook_dict(h) for h in session.existing_queue.hooks()]
    rows = [(h["name"], ",".join(h["on"]), h["queue"] or "*", h["job"]["command"]) for h in hooks]
    print_listing(
        hooks, as_json, "no hooks", ["NAME", "ON", "QUEUE", "COMMAND"], rows, elastic=("COMMAND",)
    )


@removal(hook, complete.hooks)
def hook_remove(session: Session, name: str) -> None:
    """Remove a hook (hook jobs it already enqueued stay)."""
    session.existing_queue.remove_hook(name)
    click.echo(f"removed hook {name}", err=True)
