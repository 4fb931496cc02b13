"""Writes docs/cli.md, the command-line reference, from queuectl's click definitions.

`python docs/gen_cli.py` rewrites the file; `python docs/gen_cli.py --check` exits 1 when the
file differs from what the commands say today (tests/docs/test_cli_reference.py runs it).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

from queuectl.cli import cli

OUT = Path(__file__).with_name("cli.md")

HEAD = """\
# Command-line reference

Generated from the commands themselves by `python docs/gen_cli.py`; a test fails when this
file and the commands disagree. Every command takes `-h`/`--help`. The global option `--db`
goes before the command: `queuectl --db /tmp/q.db list`.

Wherever a command takes a job ID, a unique prefix of one will do (`show 1a2441d6e`, as git
and docker take them; a prefix that starts several ids is an error listing them), and `@last`
names the newest job of the store.

Exit codes: 0 success; 1 the operation failed (not found, conflict, wrong state, a waited job
that ended `dead` or `cancelled`); 2 bad usage or invalid input; 124 `wait --timeout` ran out;
130 interrupted by Ctrl-C. Errors are one `error: ...` line on stderr.
"""


def describe(command: click.Command, ctx: click.Context, depth: int) -> list[str]:
    """The markdown section of one command, then of each of its subcommands."""
    lines = [f"{'#' * depth} `{ctx.command_path}`", ""]
    pieces = " ".join(command.collect_usage_pieces(ctx))
    lines += ["```", f"{ctx.command_path} {pieces}".rstrip(), "```", ""]
    text = inspect.cleandoc(command.help or "").replace("\b\n", "")
    if text:
        lines += [text, ""]
    rows = []
    help_option = command.get_help_option(ctx)
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is None or param is help_option:
            continue
        names, help_text = record
        cell = help_text.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{names}` | {cell} |")
    if rows:
        lines += ["| option | meaning |", "| --- | --- |", *rows, ""]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            with click.Context(sub, info_name=name, parent=ctx) as sub_ctx:
                lines += describe(sub, sub_ctx, min(depth + 1, 4))
    return lines


def render() -> str:
    with click.Context(cli, info_name="queuectl", **cli.context_settings) as ctx:
        body = describe(cli, ctx, 2)
    return HEAD + "\n" + "\n".join(body).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if argv == ["--check"]:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run python docs/gen_cli.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
