"""The command line: a click group whose commands load lazily, and the one error handler.

`queuectl enqueue` must start fast, so this module imports click and nothing heavy; each
command's module is imported only when that command runs.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

from queuectl.errors import QueuectlError

#: command name -> "module:function" under queuectl.cli
COMMANDS = {
    "init": "admin:init",
    "enqueue": "jobs:enqueue",
    "list": "jobs:list_jobs",
    "show": "jobs:show",
    "logs": "jobs:logs",
    "wait": "jobs:wait",
    "cancel": "jobs:cancel",
    "explain": "jobs:explain",
    "purge": "jobs:purge",
    "status": "admin:status",
    "config": "admin:config",
    "queue": "admin:queue",
    "dlq": "dlq:dlq",
    "worker": "worker:worker",
    "schedule": "schedule:schedule",
    "serve": "serve:serve",
    "demo": "demo:demo",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when the command is used."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.lazy, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(f"queuectl.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("queuectl"):
                return None  # a command of a later version of this package
            raise
        command: click.Command = getattr(module, attr)
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, split_colon_spelling(args, self.lazy))


def split_colon_spelling(args: list[str], commands: dict[str, str]) -> list[str]:
    """`dlq:list` -> `dlq list`, the spelling of earlier versions, for the command word only."""
    skip_next = False
    for index, arg in enumerate(args):
        if skip_next:
            skip_next = False
        elif arg == "--db":
            skip_next = True
        elif arg.startswith("-"):
            continue
        else:
            group, colon, sub = arg.partition(":")
            if colon and group in commands and sub:
                return [*args[:index], group, sub, *args[index + 1 :]]
            return args
    return args


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--db",
    "target",
    metavar="TARGET",
    help="Queue store: a file path, sqlite:///path or postgresql://... (env QUEUECTL_DB).",
)
@click.version_option(package_name="queuectl", message="queuectl %(version)s")
@click.pass_context
def cli(ctx: click.Context, target: str | None) -> None:
    """queuectl: run shell commands in the background, durably, with retries and a DLQ."""
    ctx.obj = Session(target)


class Session:
    """What every command shares: the store target, and the Queue opened on first use."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self._queue: Any = None

    @property
    def queue(self) -> Any:
        if self._queue is None:
            from queuectl.queue import Queue

            self._queue = Queue(self.target)
        return self._queue


def fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> None:
    """The console script: run the CLI, turning every expected error into one line."""
    try:
        code = cli.main(args=argv, prog_name="queuectl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        fail(exc.format_message(), 2)
    except click.Abort:
        fail("aborted", 1)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except QueuectlError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail("interrupted", 130)
    except BrokenPipeError:
        # The reader went away (`queuectl list | head`); nothing more to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    except Exception as exc:
        if os.environ.get("QUEUECTL_DEBUG") == "1":
            raise
        from queuectl.urls import redact_url  # a driver's error may quote the store's URL

        why = " ".join(redact_url(str(exc)).split())
        fail(f"unexpected {type(exc).__name__}: {why} (QUEUECTL_DEBUG=1 shows where)", 1)
    sys.exit(code if isinstance(code, int) else 0)
