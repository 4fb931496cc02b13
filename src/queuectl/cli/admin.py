"""Store and configuration commands: init, status, config, queue, reset."""

from __future__ import annotations

import json
from typing import Any

import click

from queuectl.cli import Group, Session, complete
from queuectl.cli.params import listing


@click.command()
@click.pass_obj
def init(session: Session) -> None:
    """Create or migrate the store, check it, and print where it is."""
    queue = session.queue
    queue.verify()
    info = queue.describe()
    click.echo(f"{info['target']} ({info['kind']}, schema {info['schema_version']})")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
@click.option(
    "--since", metavar="DURATION", help="Also count the jobs finished in this window (10m, 2h...)."
)
@click.pass_obj
def status(session: Session, as_json: bool, since: str | None) -> None:
    """Counts per state and queue, live runners, and jobs done in the last minute."""
    from queuectl.cli.render import print_json, print_table, state_text

    if since is not None:
        from queuectl.durations import parse_duration

        parse_duration(since, "since")  # bad input is refused before the store opens
    report = session.existing_queue.status(since=since)
    if as_json:
        print_json(report)
        return
    counts = report["counts"]
    headers = [state_text(state) for state in counts]
    print_table("jobs", headers, [list(counts.values())])
    if report["queues"]:
        states = list(counts)
        rows = [[name, *(per[s] for s in states)] for name, per in report["queues"].items()]
        print_table("queues", ["QUEUE", *headers], rows)
    if report["runners"]:
        print_runners(report["runners"])
        if all(r["stopping"] for r in report["runners"]):
            click.echo(
                "every runner is stopping: no new job starts "
                "(keep them with: queuectl worker stop --cancel)"
            )
    else:
        click.echo("no runner is up (start one with: queuectl worker start)")
    click.echo(f"done in the last minute: {report['done_last_minute']}")
    if report.get("progress"):
        from queuectl.progress import text as progress_text

        rows = [[r["id"], r["queue"], progress_text(r["progress"])] for r in report["progress"]]
        print_table("running, with progress", ["ID", "QUEUE", "PROGRESS"], rows)
    if "since" in report:
        print_since(report["since"], since or "")


def print_since(window: dict[str, Any], since: str) -> None:
    """The jobs finished in the --since window, by state."""
    from queuectl.cli.render import print_table, state_text

    states = ("completed", "dead", "cancelled")
    title = f"finished in the last {since}"
    print_table(
        title,
        [*(state_text(s) for s in states), "CPU"],
        [[*(window[s] for s in states), f"{window['cpu_seconds']:.1f}s"]],
    )


def print_runners(runners: list[dict[str, Any]]) -> None:
    from queuectl.cli.render import local_time, print_table, short_time, state_text, zone_name

    rows: list[tuple[Any, ...]] = [
        (
            r["host"],
            r["pid"],
            r["workers"],
            ",".join(r["queues"] or ["*"]),
            local_time(r["started_at"]),
            local_time(r["heartbeat_at"]),
            state_text(r.get("state") or ("stopping" if r["stopping"] else "up")),
            " ".join(r["running"]) or "-",
            ",".join(r["enforces"]) or "-",
        )
        for r in runners
    ]
    columns = [
        *("HOST", "PID", "WORKERS", "QUEUES", "STARTED", "HEARTBEAT", "STATUS", "RUNNING"),
        "ENFORCES",
    ]
    if any(r.get("tags") for r in runners):  # a column only where runners are tagged
        columns.insert(4, "TAGS")
        rows = [
            (*row[:4], ",".join(r["tags"]) or "-", *row[4:])
            for row, r in zip(rows, runners, strict=True)
        ]
    zone = zone_name()
    short = {
        name: (f"{name} {zone}", [short_time(r[key]) for r in runners])
        for name, key in (("HEARTBEAT", "heartbeat_at"), ("STARTED", "started_at"))
    }
    print_table(
        "runners",
        columns,
        rows,
        wrap=("RUNNING",),
        short=short,
        droppable=("STARTED", "WORKERS", "ENFORCES"),
    )


@click.group(cls=Group)
def config() -> None:
    """See and change the queue's configuration (shared by every runner)."""


@listing(config, "Print an object of key to value.")
def config_list(session: Session, as_json: bool) -> None:
    """Every key with its value."""
    from queuectl.cli.render import print_listing
    from queuectl.config import KEYS

    values = session.existing_queue.config()  # every key, always
    rows = [(key, values[key], KEYS[key].default, KEYS[key].help) for key in KEYS]
    columns = ["KEY", "VALUE", "DEFAULT", "MEANING"]
    print_listing(values, as_json, "no keys", columns, rows, wrap=("MEANING",))


@config.command("get")
@click.argument("key", shell_complete=complete.config_keys)
@click.option("--json", "as_json", is_flag=True, help="Print the value as JSON.")
@click.pass_obj
def config_get(session: Session, key: str, as_json: bool) -> None:
    """Print one key's bare value."""
    value = session.existing_queue.get_config(key)
    click.echo(json.dumps(value) if as_json else value)


@config.command("set")
@click.argument("key", shell_complete=complete.config_keys)
@click.argument("value")
@click.pass_obj
def config_set(session: Session, key: str, value: str) -> None:
    """Validate and store a value; running runners pick it up within seconds."""
    stored = session.queue.set_config(key, value)
    click.echo(f"{key.replace('-', '_')} = {stored}", err=True)


@click.group(cls=Group)
def queue() -> None:
    """Named queues: list them, pause and resume them, limit them."""


@listing(queue, "Print the queues as JSON.")
def queue_list(session: Session, as_json: bool) -> None:
    """Named queues with their limits and counts per state."""
    from queuectl.cli.render import print_json, print_table, short_state_text, state_text
    from queuectl.models import STATES

    queues = session.existing_queue.queues()
    if as_json:
        print_json(queues)
        return
    rows = [
        [
            name,
            "paused" if q["paused"] else "active",
            "-" if q["concurrency"] is None else q["concurrency"],
            _rate_text(q["rate"]),
            *(q["counts"][s] for s in STATES),
        ]
        for name, q in queues.items()
    ]
    headers = ["QUEUE", "STATUS", "LIMIT", "RATE", *(state_text(s) for s in STATES)]
    if any("defaults" in q for q in queues.values()):  # a column only where it says something
        headers.append("DEFAULTS")
        for row, q in zip(rows, queues.values(), strict=True):
            row.append(_defaults_text(q.get("defaults")))
    counts = {s: [q["counts"][s] for q in queues.values()] for s in STATES}
    short = {s: (short_state_text(s), counts[s]) for s in STATES}
    print_table(None, headers, rows, short=short)


def _defaults_text(defaults: dict[str, Any] | None) -> str:
    if not defaults:
        return "none"
    said = []
    if defaults["timeout"] is not None:
        said.append(f"timeout {defaults['timeout']:g}s")
    if defaults["max_retries"] is not None:
        said.append(f"max retries {defaults['max_retries']}")
    return ", ".join(said)


def _rate_text(rate: dict[str, Any] | None) -> str:
    return "-" if rate is None else f"{rate['jobs']}/{rate['seconds']}s"


@queue.command("set")
@click.argument("name", shell_complete=complete.queues)
@click.option("--concurrency", metavar="N|none", help="At most N jobs of the queue run at once.")
@click.option(
    "--rate", metavar="N/DURATION|none", help="At most N jobs start in any DURATION (10/1m)."
)
@click.option(
    "--memory", metavar="SIZE|none", help="Its jobs' memory unless they give theirs (512M, 4G)."
)
@click.option("--cpus", metavar="N|none", help="Its jobs' CPUs unless they give theirs (1.5).")
@click.option(
    "--max-procs", metavar="N|none", help="Its jobs' process limit unless they give theirs."
)
@click.option(
    "--timeout", metavar="D|none", help="Default timeout of its jobs that set none (30s, 5m)."
)
@click.option(
    "--max-retries", metavar="N|none", help="Default max retries of its jobs that set none."
)
@click.pass_obj
def queue_set(
    session: Session,
    name: str,
    concurrency: str | None,
    rate: str | None,
    memory: str | None,
    cpus: str | None,
    max_procs: str | None,
    timeout: str | None,
    max_retries: str | None,
) -> None:
    """Limit a queue across every runner and host, and give its jobs defaults (limits,
    timeout, max retries); `none` removes a limit or a default.

    A default applies to the jobs of the queue that set none of their own, as each attempt
    starts: a change reaches the jobs already waiting.
    """
    from queuectl.admin import UNCHANGED
    from queuectl.errors import InvalidInputError

    limits = {"memory": memory, "cpus": cpus, "max_procs": max_procs}
    if (
        concurrency is None
        and rate is None
        and timeout is None
        and max_retries is None
        and all(v is None for v in limits.values())
    ):
        raise InvalidInputError(
            "give --concurrency, --rate, --memory, --cpus, --max-procs, --timeout or --max-retries"
        )
    if timeout is not None or max_retries is not None:
        shown = session.queue.set_queue_defaults(
            name,
            timeout=UNCHANGED if timeout is None else timeout,
            max_retries=UNCHANGED if max_retries is None else max_retries,
        )
    if concurrency is not None or rate is not None or any(v is not None for v in limits.values()):
        shown = session.queue.set_queue(
            name,
            concurrency=UNCHANGED if concurrency is None else concurrency,
            rate=UNCHANGED if rate is None else rate,
            **{key: UNCHANGED if value is None else value for key, value in limits.items()},
        )
    limit = "none" if shown["concurrency"] is None else shown["concurrency"]
    said = f"{name}: concurrency {limit}, rate {_rate_text(shown['rate'])}"
    given = [f"{key} {_default_text(key, shown[key])}" for key in limits if shown[key]]
    click.echo(
        ", ".join([said, *given, f"defaults {_defaults_text(shown.get('defaults'))}"]), err=True
    )


def _default_text(key: str, value: Any) -> str:
    if key == "memory":
        from queuectl.usage import size_name

        return size_name(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


@queue.command("pause")
@click.argument("name", shell_complete=complete.queues)
@click.pass_obj
def queue_pause(session: Session, name: str) -> None:
    """Stop runners from starting new jobs of this queue (running ones finish)."""
    session.queue.pause(name)
    click.echo(f"paused {name}", err=True)


@queue.command("resume")
@click.argument("name", shell_complete=complete.queues)
@click.pass_obj
def queue_resume(session: Session, name: str) -> None:
    """Let runners start jobs of this queue again."""
    from queuectl.errors import NotFoundError
    from queuectl.models import validate_id

    validate_id(name, "queue")
    queue = session.existing_queue
    if name not in queue.queues():
        # Resuming a queue that has neither jobs nor settings is surely a typo.
        raise NotFoundError(f"no queue {name!r} (it has no jobs and is not paused)")
    queue.resume(name)
    click.echo(f"resumed {name}", err=True)


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Also remove schedules, hooks and queue settings, and restore the default configuration.",
)
@click.pass_obj
def reset(session: Session, yes: bool, everything: bool) -> None:
    """Delete every job with its history and output (refused while a runner is up)."""
    from queuectl.cli.bulk import confirm

    queue = session.existing_queue
    if queue.runners():
        from queuectl.errors import ConflictError

        raise ConflictError("a runner is up; stop it first with `queuectl worker stop`, then reset")
    jobs = sum(sum(states.values()) for states in queue.counts().values())
    what = f"{jobs} job{'s' if jobs != 1 else ''} with their history and output"
    if everything:
        schedules, hooks = len(queue.schedules()), len(queue.hooks())
        what += (
            f", {schedules} schedule{'s' if schedules != 1 else ''}, "
            f"{hooks} hook{'s' if hooks != 1 else ''}, the queue settings and the configuration"
        )
    confirm(yes, f"delete {what}?")
    deleted = queue.reset(all=everything)
    done = f"deleted {deleted['jobs']} job{'s' if deleted['jobs'] != 1 else ''}"
    if everything:
        done += (
            f", {deleted['schedules']} schedule(s) and {deleted['hooks']} hook(s); "
            "configuration restored to its defaults"
        )
    click.echo(done, err=True)
