"""Job commands: enqueue, list, show, logs, wait, cancel, explain, purge."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from queuectl.cli import Session, complete
from queuectl.cli.jobinput import parse_jobs_text, parse_json_words, stream_job_lines
from queuectl.errors import InvalidInputError
from queuectl.models import CANCELLED, Job, new_job

if TYPE_CHECKING:
    from queuectl.cli.render import JobFacts
    from queuectl.queue import Queue


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


class EnqueueCommand(click.Command):
    """Remembers whether `--` was given: after it, the words are the command's argv."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dashdash"] = "--" in args
        return super().parse_args(ctx, args)


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
            click.option(
                "--after",
                multiple=True,
                metavar="ID",
                shell_complete=complete.job_ids,
                help="Run after this job completed (repeatable).",
            ),
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
            click.option(
                "--after-any",
                multiple=True,
                metavar="ID",
                shell_complete=complete.job_ids,
                help="Run after this job finished, in any state (repeatable).",
            ),
            click.option(
                "--after-failure",
                multiple=True,
                metavar="ID",
                shell_complete=complete.job_ids,
                help="Run only if this job ends dead (repeatable).",
            ),
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


def options_as_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The enqueue options given on the command line, as job JSON fields."""
    fields: dict[str, Any] = {
        "id": options.get("job_id"),
        "queue": options.get("queue"),
        "priority": options.get("priority"),
        "max_retries": options.get("max_retries"),
        "timeout": options.get("timeout"),
        "delay": options.get("delay"),
        "run_at": _local_run_at(options.get("run_at")),
        "unique_key": options.get("unique_key"),
        "lock": options.get("lock_key"),
        "cwd": options.get("cwd"),
        "memory": options.get("memory"),
        "cpus": options.get("cpus"),
        "max_procs": options.get("max_procs"),
        "batch": options.get("batch"),
        "held": options.get("hold") or None,
        "expires": _local_expires(options.get("expires")),
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


def _local_run_at(value: str | None) -> str | None:
    """--run-at without an offset is local time: pinned here as UTC, which the job JSON reads
    a time without an offset as."""
    if value is None:
        return None
    from queuectl.durations import ms_to_iso, parse_iso

    return ms_to_iso(parse_iso(value, "--run-at", naive_is_local=True))


def _local_expires(value: str | None) -> str | None:
    """--expires as a duration, or a time read as --run-at reads one."""
    if value is None or not any(c in value for c in "T:-"):
        return value
    return _local_run_at(value)


def command_from_words(words: tuple[str, ...]) -> str:
    """One word is a shell command line; several are an argv, quoted so sh runs it as given."""
    if len(words) == 1:
        return words[0]
    import shlex

    return shlex.join(words)


@click.command(cls=EnqueueCommand)
@click.argument("words", nargs=-1, type=click.UNPROCESSED, metavar="[JSON | -- CMD ARGS...]")
@click.option("--command", "-c", "command", help="The shell command to run.")
@click.option(
    "--file", "-f", "file", type=click.File("r"), help="Jobs as JSON or JSON Lines; - reads stdin."
)
@click.option(
    "--array",
    "array",
    metavar="SPEC",
    help="One job per index (1-100, 0-98:2, 1,5,9; %N: at most N at once), ids ID.INDEX, "
    "QUEUECTL_ARRAY_INDEX set, all in the batch ID.",
)
@enqueue_options
@click.option("--json", "as_json", is_flag=True, help="Print the new jobs as a JSON array.")
@click.pass_context
def enqueue(
    ctx: click.Context,
    /,
    words: tuple[str, ...],
    command: str | None,
    file: Any,
    array: str | None,
    as_json: bool,
    **options: Any,
) -> None:
    """Enqueue a job: a JSON object, --command CMD, -- CMD ARGS..., or --file PATH (- for stdin).

    Prints the id of each new job, one a line. A batch from --file is all or nothing.
    """
    given = sum(
        [
            bool(command is not None),
            bool(file is not None),
            bool(words and not ctx.meta.get("dashdash")),
            bool(words and ctx.meta.get("dashdash")),
        ]
    )
    if given != 1:
        raise click.UsageError(
            "give exactly one of: a JSON job, --command CMD, -- CMD ARGS..., or --file PATH"
        )
    overrides = options_as_fields(options)
    if array is not None:
        if file is not None:
            raise click.UsageError("--array makes its jobs from one command: not with --file")
        enqueue_array(
            ctx.obj, array, command, words, bool(ctx.meta.get("dashdash")), overrides, as_json
        )
        return
    if file is not None:
        stream, text = stream_job_lines(file)
        if stream is not None:  # JSON Lines: one transaction, in the memory of one batch
            if overrides:
                stream = ((n, {**item, **overrides}) for n, item in stream)
            enqueue_stream(ctx.obj, stream, as_json)
            return
        items = parse_jobs_text(text)
    elif command is not None:
        items = [{"command": command}]
    elif ctx.meta.get("dashdash"):
        items = [{"command": command_from_words(words)}]
    else:
        items = parse_json_words(words)
    where = "line" if file is not None and len(items) > 1 else "job"
    cwd = os.getcwd()
    validated = [
        new_job({**item, **overrides}, f"{where} {n}" if len(items) > 1 else "", cwd)
        for n, item in enumerate(items, 1)
    ]
    session: Session = ctx.obj
    jobs = session.queue.enqueue_many(validated)
    for asked, job in zip(validated, jobs, strict=True):
        if note := _held_key_note(asked.id, asked.unique_key, job.id):
            click.echo(note, err=True)
    if (options.get("run_at") or options.get("delay")) and len(jobs) == 1:
        from queuectl.cli.render import local_time

        click.echo(f"{jobs[0].id} starts no sooner than {local_time(jobs[0].run_at_ms)}", err=True)
    if as_json:
        from queuectl.cli.render import print_json

        print_json([job.to_dict() for job in jobs])
    else:
        sys.stdout.write("".join(f"{job.id}\n" for job in jobs))
    sys.stdout.flush()
    for name, why in session.queue.unserved([job.queue for job in jobs]).items():
        flag = "" if name == "default" else f" --queue {name}"
        said = "is up" if why == "none is up" else "takes jobs: every one is stopping"
        click.echo(
            f"note: no runner serving queue {name!r} {said}; start one with: "
            f"queuectl worker start{flag}",
            err=True,
        )


def _held_key_note(wanted: object, key: object, got: str) -> str | None:
    """What to tell of a job asked as `wanted` that came back as job `got`, holder of its key."""
    if key is None or wanted is None or got == wanted:
        return None
    return (
        f"note: job {got} already holds unique key {key!r}; "
        f"its id is printed and no job {wanted} was added"
    )


def enqueue_array(
    session: Session,
    spec: str,
    command: str | None,
    words: tuple[str, ...],
    dashdash: bool,
    overrides: dict[str, Any],
    as_json: bool,
) -> None:
    """Enqueue an array of one job; its ids printed (or its JSON) once committed."""
    from queuectl.arrays import parse_array

    parse_array(spec)  # a bad SPEC is refused before anything else is looked at
    if command is not None:
        items = [{"command": command}]
    elif dashdash:
        items = [{"command": command_from_words(words)}]
    else:
        items = parse_json_words(words)
    if len(items) != 1:
        raise InvalidInputError("--array repeats one job: give one, not a list")
    job = {**items[0], **overrides}
    import shutil
    import tempfile

    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        separator = "[\n"

        def each(jobs: list[Any]) -> None:
            nonlocal separator
            if as_json:
                for one in jobs:
                    text = json.dumps(one.to_dict(), indent=2, ensure_ascii=False)
                    spool.write(separator + "  " + text.replace("\n", "\n  "))
                    separator = ",\n"
            else:
                spool.write("".join(f"{one.id}\n" for one in jobs))

        base, count = session.queue.enqueue_array(spec, job, each)
        if as_json:
            spool.write("\n]\n" if count else "[]\n")
        spool.seek(0)
        shutil.copyfileobj(spool, sys.stdout)
    click.echo(f"batch {base}: {count} job{'s' if count != 1 else ''}", err=True)


def enqueue_stream(
    session: Session, items: Iterator[tuple[str, dict[str, Any]]], as_json: bool
) -> None:
    """Enqueue a stream of jobs; their ids (or JSON) are spooled to a temporary file and
    printed once the transaction has committed, so a refused stream prints nothing."""
    import shutil
    import tempfile
    from collections import deque

    # The id and unique key each job asked for, until its batch is stored: a job whose key
    # another holds comes back as that one, which the notes say.
    asked: deque[tuple[object, object]] = deque()
    notes: list[str] = []

    def remembered() -> Iterator[tuple[str, dict[str, Any]]]:
        for label, item in items:
            asked.append((item.get("id"), item.get("unique_key")))
            yield label, item

    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        separator = "[\n"  # print_json's layout of a list, one job at a time

        def each(jobs: list[Any]) -> None:
            nonlocal separator
            for job in jobs:
                if note := _held_key_note(*asked.popleft(), job.id):
                    notes.append(note)
            if as_json:
                for job in jobs:
                    text = json.dumps(job.to_dict(), indent=2, ensure_ascii=False)
                    spool.write(separator + "  " + text.replace("\n", "\n  "))
                    separator = ",\n"
            else:
                spool.write("".join(f"{job.id}\n" for job in jobs))

        session.queue.enqueue_stream(remembered(), each)
        if as_json:
            spool.write("\n]\n")
        for note in notes:
            click.echo(note, err=True)
        spool.seek(0)
        shutil.copyfileobj(spool, sys.stdout)


@click.command("list")
@click.option(
    "--state",
    "-s",
    "states",
    multiple=True,
    help="Only jobs in this state (repeatable: any of them; running = processing).",
    shell_complete=complete.states,
)
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    type=UTF8,
    help="Only jobs of this queue (repeatable: any of them).",
    shell_complete=complete.queues,
)
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="At most this many (0 = all).",
)
@click.option(
    "--search",
    type=UTF8,
    help="Only jobs whose id starts with TEXT, or whose command or last error holds it.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of jobs.")
@click.option("--held", is_flag=True, help="Only held jobs.")
@click.pass_obj
def list_jobs(
    session: Session,
    states: tuple[str, ...],
    queues: tuple[str, ...],
    limit: int,
    search: str | None,
    as_json: bool,
    held: bool,
) -> None:
    """List jobs, newest first."""
    from queuectl.cli.render import print_jobs

    queue = session.existing_queue
    if search is not None:
        print_jobs(queue.search(search, states, queues, limit or None), as_json)
        return
    jobs = queue.list(state=states, queue=queues, limit=limit or None, held=held)
    print_jobs(jobs, as_json)
    if limit and len(jobs) == limit and not as_json and not held:
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
@click.argument(
    "job_ids", nargs=-1, metavar="[ID...]", type=JOB_REF, shell_complete=complete.job_ids
)
@click.option(
    "--queue",
    "-q",
    type=UTF8,
    help="Every pending, failed and running job of this queue.",
    shell_complete=complete.queues,
)
@click.option(
    "--state",
    "-s",
    "states",
    multiple=True,
    help="With --queue or --search: only jobs in this state (repeatable).",
    shell_complete=complete.states,
)
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
@click.argument(
    "job_ids", nargs=-1, metavar="[ID...]", type=JOB_REF, shell_complete=complete.job_ids
)
@click.option(
    "--state",
    "-s",
    "states",
    multiple=True,
    help="Every job in this state (repeatable).",
    shell_complete=complete.states,
)
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    type=UTF8,
    help="Every job of this queue (repeatable).",
    shell_complete=complete.queues,
)
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
) -> None:
    """`action` on every job the filter matches, after a question with their count (on a
    terminal; --yes elsewhere), with a progress line; says how many were changed."""
    queue = session.queue
    counted = queue.bulk(action, states, queues, search, dry_run=True)["matched"]
    if not counted:
        click.echo("no job matches: nothing to do", err=True)
        return
    if not yes and sys.stdin.isatty():
        verb = "run again" if action == "retry" else action
        confirm(yes, f"{verb} the {counted:,} job{'s' if counted != 1 else ''} that match?")
    with progress_line(done, counted) as progress:
        shown = None if progress is None else (lambda matched, changed: progress(changed))
        found = queue.bulk(action, states, queues, search, progress=shown)
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
    from queuectl.durations import parse_duration
    from queuectl.queue import purgeable_states

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
@click.argument(
    "job_ids", nargs=-1, metavar="[ID...]", type=JOB_REF, shell_complete=complete.job_ids
)
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
