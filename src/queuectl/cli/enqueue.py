"""`queuectl enqueue`: one job, a list, a stream of JSON Lines, or an array.

A plain command is the common case and starts a process each time: the readers of JSON input
(`jobinput`) load only for JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import Any

import click

from queuectl.cli import Session
from queuectl.cli.params import enqueue_options, options_as_fields
from queuectl.errors import InvalidInputError
from queuectl.models import Job, new_job


class EnqueueCommand(click.Command):
    """Remembers whether `--` was given: after it, the words are the command's argv."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["dashdash"] = "--" in args
        return super().parse_args(ctx, args)


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
        from queuectl.cli.jobinput import parse_jobs_text, stream_job_lines

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
        from queuectl.cli.jobinput import parse_json_words

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
        from queuectl.cli.jobinput import parse_json_words

        items = parse_json_words(words)
    if len(items) != 1:
        raise InvalidInputError("--array repeats one job: give one, not a list")
    job = {**items[0], **overrides}
    with Spool(as_json) as spool:
        base, count = session.queue.enqueue_array(spec, job, spool.add)
        spool.print()
    click.echo(f"batch {base}: {count} job{'s' if count != 1 else ''}", err=True)


def enqueue_stream(
    session: Session, items: Iterator[tuple[str, dict[str, Any]]], as_json: bool
) -> None:
    """Enqueue a stream of jobs; their ids (or JSON) are spooled to a temporary file and
    printed once the transaction has committed, so a refused stream prints nothing."""
    from collections import deque

    # The id and unique key each job asked for, until its batch is stored: a job whose key
    # another holds comes back as that one, which the notes say.
    asked: deque[tuple[object, object]] = deque()
    notes: list[str] = []

    def remembered() -> Iterator[tuple[str, dict[str, Any]]]:
        for label, item in items:
            asked.append((item.get("id"), item.get("unique_key")))
            yield label, item

    with Spool(as_json) as spool:

        def each(jobs: list[Job]) -> None:
            for job in jobs:
                if note := _held_key_note(*asked.popleft(), job.id):
                    notes.append(note)
            spool.add(jobs)

        session.queue.enqueue_stream(remembered(), each)
        for note in notes:
            click.echo(note, err=True)
        spool.print()


class Spool:
    """What an enqueue of many jobs prints (their ids, or a JSON array laid out as print_json
    lays one out, a job at a time), kept in a temporary file until the transaction has
    committed: a refused enqueue prints nothing, and memory stays that of one batch."""

    def __init__(self, as_json: bool) -> None:
        import tempfile

        self.as_json = as_json
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - __exit__ closes it
        self.count = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.file.close()

    def add(self, jobs: list[Job]) -> None:
        """Keep a batch of jobs (before the commit)."""
        if not self.as_json:
            self.file.write("".join(f"{job.id}\n" for job in jobs))
            return
        for job in jobs:
            text = json.dumps(job.to_dict(), indent=2, ensure_ascii=False)
            self.file.write(("," if self.count else "[") + "\n  " + text.replace("\n", "\n  "))
            self.count += 1

    def print(self) -> None:
        """Print what was kept (once committed)."""
        import shutil

        if self.as_json:
            self.file.write("\n]\n" if self.count else "[]\n")
        self.file.seek(0)
        shutil.copyfileobj(self.file, sys.stdout)
