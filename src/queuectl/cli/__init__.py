"""The command line: a click group whose commands load lazily, and the one error handler.

`queuectl enqueue` must start fast, so this module imports click and nothing heavy; each
command's module is imported only when that command runs.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from queuectl.queue import Queue

from queuectl import __version__
from queuectl.errors import QueuectlError

#: command name -> "module:function" under queuectl.cli
COMMANDS = {
    "init": "admin:init",
    "enqueue": "enqueue:enqueue",
    "list": "jobs:list_jobs",
    "show": "jobs:show",
    "logs": "jobs:logs",
    "wait": "jobs:wait",
    "cancel": "bulk:cancel",
    "requeue": "bulk:requeue",
    "explain": "jobs:explain",
    "purge": "bulk:purge",
    "status": "admin:status",
    "config": "admin:config",
    "queue": "admin:queue",
    "dlq": "dlq:dlq",
    "worker": "worker:worker",
    "schedule": "schedule:schedule",
    "hook": "hook:hook",
    "batch": "batch:batch",
    "reset": "admin:reset",
    "serve": "serve:serve",
    "token": "access:token",
    "audit": "access:audit",
    "demo": "demo:demo",
    "hold": "control:hold",
    "release": "control:release",
    "edit": "control:edit",
    "progress": "progress:progress",
}


class Group(click.Group):
    """A group whose command list shows each command's first sentence whole, never cut."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            paragraph = " ".join((command.help or "").strip().split("\n\n")[0].split())
            summary = command.short_help or re.split(r"(?<=[.!?])\s+", paragraph)[0]
            rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


class LazyGroup(Group):
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
@click.version_option(__version__, message="queuectl %(version)s")
@click.pass_context
def cli(ctx: click.Context, target: str | None) -> None:
    """queuectl: run shell commands in the background, durably, with retries and a DLQ."""
    ctx.obj = Session(target)


def sqlite_path(target: str | None) -> str | None:
    """The file of a SQLite target (None for PostgreSQL), resolved as the store does."""
    if target is None:
        from queuectl.store import default_target

        target = default_target()
    if target.startswith("sqlite:///"):
        target = target[len("sqlite://") :]
    elif ":" in target.split("/", 1)[0]:
        return None  # a URL: PostgreSQL, or a scheme the store refuses with its own error
    return os.path.abspath(os.path.expanduser(target))


class Session:
    """What every command shares: the store target, and the Queue opened on first use."""

    def __init__(self, target: str | None) -> None:
        self.target = target
        self._queue: Queue | None = None

    @property
    def existing_queue(self) -> Queue:
        """The Queue of a read command: a `--db` file that does not exist is an error, not
        a new empty store (a typo must not create folders and files)."""
        if self._queue is None and self.target is not None:
            path = sqlite_path(self.target)
            if path is not None and not os.path.exists(path):
                from queuectl.errors import NotFoundError

                raise NotFoundError(f"no queue at {path}; run queuectl init or enqueue a job first")
        return self.queue

    @property
    def queue(self) -> Queue:
        if self._queue is None:
            from queuectl.queue import Queue

            self._queue = Queue(self.target)
        return self._queue


#: Commands that delete: offered for a mistyped word only when it is nearly their own.
DESTRUCTIVE = frozenset({"reset", "purge"})

#: The words of pueue, task-spooler and the like, and what they are called here.
OTHER_TOOLS_WORDS = {
    "retry": "run a job again with `queuectl requeue ID` (or `queuectl dlq retry ID` from the DLQ)",
    "restart": "run a job again with `queuectl requeue ID` (or `queuectl dlq retry ID` from the DLQ)",
    "ls": "jobs are listed by `queuectl list`",
    "start": "a runner is started by `queuectl worker start`",
    "stop": "runners are stopped by `queuectl worker stop`",
    "add": "jobs are added by `queuectl enqueue -- CMD ARGS`",
    "follow": "output is followed by `queuectl logs --follow ID`",
    "kill": "a job is killed by `queuectl cancel ID`",
    "rm": "finished jobs are deleted by `queuectl purge` (a waiting job by `queuectl cancel ID`)",
    "remove": "finished jobs are deleted by `queuectl purge` (a waiting job by `queuectl cancel ID`)",
    "clean": "finished jobs are deleted by `queuectl purge`",
    "log": "a job's output is printed by `queuectl logs ID`",
    "run": "jobs are added by `queuectl enqueue -- CMD ARGS`; `queuectl worker start` runs them",
}


def fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def usage_message(exc: click.UsageError) -> str:
    """click's usage errors in the words of this CLI, without the framework's phrasing."""
    if isinstance(exc, click.BadParameter) and exc.param is not None:
        param = exc.param
        if isinstance(param, click.Option):
            name = max(param.opts, key=len)
        else:
            name = param.make_metavar(exc.ctx) if exc.ctx else (param.name or "argument")
        if isinstance(exc, click.MissingParameter):
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx else ""
            return f"missing {name}{where}"
        message = exc.message.rstrip(".")
        message = re.sub(
            r"^(\S+) is not in the range (-?\d+)<=x<=(-?\d+)$",
            r"must be from \2 to \3, got \1",
            message,
        )
        message = re.sub(
            r"^(\S+) is not in the range x>=(-?\d+)$", r"must be at least \2, got \1", message
        )
        return f"{name}: {message[:1].lower()}{message[1:]}"
    if isinstance(exc, click.NoSuchOption) and exc.option_name.split("=")[0] == "--db":
        return "--db is a global option: put it before the command, e.g. queuectl --db PATH list"
    if isinstance(exc, click.exceptions.NoSuchCommand) and exc.ctx is not None:
        import difflib

        group = exc.ctx.command
        names = group.list_commands(exc.ctx) if isinstance(group, click.Group) else []
        word = exc.command_name
        known = OTHER_TOOLS_WORDS.get(word.lower()) if exc.ctx.parent is None else None
        if known is not None:
            return f"no command {word!r}; {known}"
        # A command that deletes is offered only for a near-exact spelling of it, and then
        # before any other near one (`resett` is `reset`, not `release`).
        close = difflib.get_close_matches(word, sorted(DESTRUCTIVE & set(names)), 1, 0.9)
        if not close:
            close = difflib.get_close_matches(word, [n for n in names if n not in DESTRUCTIVE], 1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (see {exc.ctx.command_path} --help)"
        return f"no command {word!r}{hint}"
    return exc.format_message()


def main(argv: list[str] | None = None) -> None:
    """The console script: run the CLI, turning every expected error into one line."""
    try:
        code = cli.main(args=argv, prog_name="queuectl", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.exceptions.NoArgsIsHelpError as exc:
        # A group without its subcommand: its help, as a usage error.
        click.echo(exc.ctx.get_help(), err=True)
        sys.exit(2)
    except click.UsageError as exc:
        fail(usage_message(exc), 2)
    except click.Abort as exc:
        if isinstance(exc.__cause__, KeyboardInterrupt):
            sys.exit(130)  # Ctrl-C: the shell's convention, and nothing more to say
        fail("aborted", 1)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except QueuectlError as exc:
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
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
