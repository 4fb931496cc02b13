"""The click parameter types of job ids and names, and the job options that `enqueue`,
`schedule add` and `hook add` share (with `edit`'s readers of times and variables)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, TypeVar

import click

from queuectl.cli import Session, complete
from queuectl.errors import InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])


class Utf8Text(click.ParamType):  # type: ignore[type-arg]  # (generic only from click 8.2)
    """A string that must be UTF-8: argv bytes that are not arrive as surrogates, which no id
    or name can hold and no store can look up."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                self.fail("must be UTF-8 text", param, ctx)
        return value


UTF8 = Utf8Text()


class JobRef(Utf8Text):
    """A job id as a person gives it: whole, a unique prefix, or `@last` (the newest job)."""

    name = "id"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        text = super().convert(value, param, ctx)
        session = ctx.find_object(Session) if ctx is not None else None
        return text if session is None else session.existing_queue.resolve(text)


JOB_REF = JobRef()


SECRET_LOOKING = re.compile(
    r"TOKEN|SECRET|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_?KEY|_KEY$|^KEY$|AUTH"
    r"|COOKIE|SESSION|_DSN$|DATABASE_URL|^QUEUECTL_",
    re.IGNORECASE,
)


SHELL_ONLY = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})


def captured_env() -> dict[str, str]:
    """This process's environment as --env-all gives it to a job (see SECRET_LOOKING)."""
    from queuectl.models import ENV_NAME

    kept = {}
    for name, value in os.environ.items():
        if name in SHELL_ONLY or SECRET_LOOKING.search(name) or not ENV_NAME.fullmatch(name):
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # bytes that are not UTF-8 cannot be stored as text
            continue
        if "\x00" not in value:
            kept[name] = value
    return kept


def parse_env(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals:
            # `--env NAME` passes this shell's NAME on, as `docker run -e NAME` does.
            if name not in os.environ:
                raise InvalidInputError(
                    f"--env: expected NAME=VALUE, or the NAME of a set variable, got {pair!r}"
                )
            value = os.environ[name]
        env[name] = value
    return env


def job_ids_argument(metavar: str = "[ID...]") -> Callable[[F], F]:
    """The jobs a command acts on: any number of ids, each resolved as JOB_REF resolves one."""
    return click.argument(
        "job_ids", nargs=-1, metavar=metavar, type=JOB_REF, shell_complete=complete.job_ids
    )


def listing(group: click.Group, help: str) -> Callable[[Callable[..., None]], click.Command]:
    """The `list` command of `group`, given the session and --json (`as_json`, its help
    `help`)."""

    def make(function: Callable[..., None]) -> click.Command:
        as_json = click.option("--json", "as_json", is_flag=True, help=help)
        return group.command("list")(as_json(click.pass_obj(function)))

    return make


def removal(group: click.Group, names: Any) -> Callable[[Callable[..., None]], click.Command]:
    """The `remove NAME` command of `group`, given the session and the name (completed by
    `names`)."""

    def make(function: Callable[..., None]) -> click.Command:
        name = click.argument("name", type=UTF8, shell_complete=names)
        return group.command("remove")(name(click.pass_obj(function)))

    return make


def states_option(help: str) -> Callable[[F], F]:
    """--state, repeatable (`states`), its values completed."""
    return click.option(
        "--state", "-s", "states", multiple=True, help=help, shell_complete=complete.states
    )


def queue_option(help: str, multiple: bool = False) -> Callable[[F], F]:
    """--queue: a queue's name (`queue`), or with `multiple` repeatable (`queues`)."""
    names = ("--queue", "-q", "queues") if multiple else ("--queue", "-q")
    return click.option(
        *names, multiple=multiple, type=UTF8, help=help, shell_complete=complete.queues
    )


def limit_option(default: int, help: str, least: int = 0) -> Callable[[F], F]:
    """--limit/-n: at most this many rows."""
    return click.option(
        "--limit",
        "-n",
        type=click.IntRange(min=least),
        default=default,
        show_default=True,
        help=help,
    )


def after_option(flag: str, help: str) -> Callable[[F], F]:
    """A repeatable option naming a job this one depends on (its ids completed)."""
    return click.option(
        flag, multiple=True, metavar="ID", shell_complete=complete.job_ids, help=help
    )


def enqueue_options(function: Any) -> Any:
    """The options shared by `enqueue` and `schedule add`."""
    for option in reversed(
        [
            click.option("--id", "job_id", help="Job id (default: generated)."),
            click.option(
                "--queue",
                "-q",
                help="Named queue (default: default).",
                shell_complete=complete.queues,
            ),
            click.option("--priority", "-p", type=int, help="Higher runs first (default 0)."),
            click.option("--max-retries", type=int, help="Retries after the first attempt."),
            click.option(
                "--timeout", help="Kill an attempt after this long (30s, 5m...; 0: never)."
            ),
            click.option("--delay", help="Start no sooner than this from now (10s, 2h...)."),
            click.option(
                "--run-at",
                help="Start no sooner than this ISO-8601 time (local time unless it has an offset).",
            ),
            after_option("--after", "Run after this job completed (repeatable)."),
            click.option("--unique-key", help="Return the existing job holding this key instead."),
            click.option(
                "--lock",
                "lock_key",
                metavar="KEY",
                help="Never run while another job holding KEY runs.",
            ),
            click.option("--cwd", help="Working directory (default: the current one)."),
            click.option(
                "--env",
                "env_pairs",
                multiple=True,
                metavar="K=V",
                help="Extra environment variable (repeatable); NAME alone passes this shell's.",
            ),
            click.option(
                "--env-all",
                "-E",
                "env_all",
                is_flag=True,
                help="Give the job this shell's environment (but secret-looking variables, "
                "unless named with --env).",
            ),
            click.option(
                "--no-retry-exit-code",
                "no_retry",
                multiple=True,
                type=int,
                metavar="N",
                help="An exit code that goes to the DLQ at once (repeatable).",
            ),
            click.option(
                "--memory",
                metavar="SIZE",
                help="Kill an attempt that uses more memory (512M, 4G: powers of 1024).",
            ),
            click.option("--cpus", metavar="N", help="CPU time it may use, in CPUs (1.5)."),
            click.option(
                "--max-procs", metavar="N", help="Processes and threads it may run at once."
            ),
            click.option("--batch", metavar="NAME", help="Put the job in this batch."),
            click.option(
                "--after-batch",
                multiple=True,
                metavar="NAME",
                help="Run once every job of this batch completed (repeatable).",
            ),
            after_option("--after-any", "Run after this job finished, in any state (repeatable)."),
            after_option("--after-failure", "Run only if this job ends dead (repeatable)."),
            click.option(
                "--hold", is_flag=True, default=None, help="Enqueue it held: run after a release."
            ),
            click.option(
                "--expires",
                metavar="D|TIME",
                help="Cancel it if not started within D (2h) or by this ISO-8601 time.",
            ),
            click.option(
                "--requires",
                multiple=True,
                metavar="TAG",
                help="Run only on a runner started with --tag TAG (repeatable: every one).",
            ),
            click.option(
                "--silence-timeout",
                metavar="D",
                help="Kill an attempt that writes no output for this long (as a timeout).",
            ),
        ]
    ):
        function = option(function)
    return function


def template_job(
    kind: str, command: str | None, job_json: str | None, options: dict[str, Any]
) -> dict[str, Any]:
    """The job a schedule or a hook (`kind`) enqueues, as JSON fields: --command CMD or one
    JSON job object, with the enqueue options given."""
    if (command is None) == (job_json is None):
        raise click.UsageError("give exactly one of --command CMD or a JSON job")
    if job_json is None:
        return {"command": command, **options_as_fields(options)}
    from queuectl.cli.jobinput import parse_jobs_text

    items = parse_jobs_text(job_json)
    if len(items) != 1:
        raise click.UsageError(f"a {kind} takes one JSON job object")
    return {**items[0], **options_as_fields(options)}


def options_as_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The enqueue options given on the command line, as job JSON fields."""
    fields: dict[str, Any] = {
        "id": options.get("job_id"),
        "queue": options.get("queue"),
        "priority": options.get("priority"),
        "max_retries": options.get("max_retries"),
        "timeout": options.get("timeout"),
        "delay": options.get("delay"),
        "run_at": local_run_at(options.get("run_at")),
        "unique_key": options.get("unique_key"),
        "lock": options.get("lock_key"),
        "cwd": options.get("cwd"),
        "memory": options.get("memory"),
        "cpus": options.get("cpus"),
        "max_procs": options.get("max_procs"),
        "batch": options.get("batch"),
        "held": options.get("hold") or None,
        "expires": local_expires(options.get("expires")),
    }
    depends_on: list[Any] = list(options.get("after") or ())
    depends_on += [{"id": i, "on": "finished"} for i in options.get("after_any") or ()]
    depends_on += [{"id": i, "on": "failed"} for i in options.get("after_failure") or ()]
    if depends_on:
        fields["depends_on"] = depends_on
    if options.get("after_batch"):
        fields["after_batch"] = list(options["after_batch"])
    if options.get("env_all"):
        fields["env"] = {**captured_env(), **parse_env(options.get("env_pairs") or ())}
    elif options.get("env_pairs"):
        fields["env"] = parse_env(options["env_pairs"])
    if options.get("no_retry"):
        fields["no_retry_exit_codes"] = list(options["no_retry"])
    if options.get("requires"):
        fields["requires"] = list(options["requires"])
    if options.get("silence_timeout") is not None:
        fields["silence_timeout"] = options["silence_timeout"]
    return {key: value for key, value in fields.items() if value is not None}


def local_run_at(value: str | None, option: str = "--run-at") -> str | None:
    """--run-at without an offset is local time: pinned here as UTC, which the job JSON reads
    a time without an offset as."""
    if value is None:
        return None
    from queuectl.durations import ms_to_iso, parse_iso

    return ms_to_iso(parse_iso(value, option, naive_is_local=True))


def local_expires(value: str | None) -> str | None:
    """--expires as a duration, or a time read as --run-at reads one (a date has two dashes or
    a T, a time of day a colon: `-1s` is a duration, refused as one)."""
    if value is None or not ("T" in value or ":" in value or value.count("-") >= 2):
        return value
    return local_run_at(value, "--expires")
