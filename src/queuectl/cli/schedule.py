"""Periodic schedules: add, list, remove."""

from __future__ import annotations

from typing import Any

import click

from queuectl.cli import Group, Session, complete
from queuectl.cli.params import enqueue_options, listing, removal, template_job


@click.group(cls=Group)
def schedule() -> None:
    """Periodic jobs: one job per cron slot or interval, however many runners are up."""


@schedule.command("add")
@click.argument("name")
@click.argument("job_json", required=False, metavar="[JSON]")
@click.option("--cron", help='A 5-field cron expression, e.g. "*/5 * * * *" (UTC unless --tz).')
@click.option("--every", help="An interval: 30s, 5m, 2h...")
@click.option("--tz", help="Time zone of --cron, e.g. Europe/Paris.")
@click.option("--command", "-c", "command", help="The shell command to run.")
@enqueue_options
@click.pass_obj
def schedule_add(
    session: Session,
    /,
    name: str,
    job_json: str | None,
    cron: str | None,
    every: str | None,
    tz: str | None,
    command: str | None,
    **options: Any,
) -> None:
    """Add (or replace) schedule NAME: (--cron EXPR | --every DURATION) (--command CMD | JSON)."""
    from queuectl.cli.render import local_time, local_zone, zone_name

    job = template_job("schedule", command, job_json, options)
    from queuectl.schedule import validate_schedule

    validate_schedule(name, cron, every, tz, job)  # bad input is refused before the store opens
    added = session.queue.add_schedule(name, job, cron=cron, every=every, tz=tz)
    said = f"schedule {added.name}: next at {local_time(added.next_at_ms)}"
    if cron is not None and tz is None and zone_name() not in ("UTC", "GMT"):
        said += f" (the cron is read in UTC; --tz names another zone, e.g. --tz {local_zone()})"
    click.echo(said, err=True)


@listing(schedule, "Print the schedules as JSON.")
def schedule_list(session: Session, as_json: bool) -> None:
    """The schedules, with their last and next enqueue times."""
    from queuectl.cli.render import local_time, print_listing
    from queuectl.schedule import describe_every
    from queuectl.shapes import schedule_dict

    schedules = [schedule_dict(s) for s in session.existing_queue.schedules()]
    rows = [
        (
            s["name"],
            s["cron"] or describe_every(s["every"]),
            s["tz"] or "UTC",
            s["job"]["command"],
            local_time(s["last_at"]),
            local_time(s["next_at"]),
        )
        for s in schedules
    ]
    columns = ["NAME", "WHEN", "TZ", "COMMAND", "LAST", "NEXT"]
    print_listing(schedules, as_json, "no schedules", columns, rows, elastic=("COMMAND",))


@removal(schedule, complete.schedules)
def schedule_remove(session: Session, name: str) -> None:
    """Remove a schedule (jobs it already enqueued stay)."""
    session.queue.remove_schedule(name)
    click.echo(f"removed schedule {name}", err=True)
