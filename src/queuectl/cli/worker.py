"""Runner commands: worker start, stop, list and recover."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import click

from queuectl.cli import Group, Session, complete

if TYPE_CHECKING:
    from queuectl.store import Runner

#: Set by `worker start --detach` for the runner it starts in the background: that process
#: runs in the foreground whatever its arguments say, so detaching can never repeat.
DETACHED_ENV = "QUEUECTL_DETACHED_RUNNER"


@click.group(cls=Group)
def worker() -> None:
    """Run, stop and list runners (the processes that execute jobs), and recover lost ones."""


@worker.command("start")
@click.option(
    "--count",
    "-n",
    type=click.IntRange(1, 1024),
    default=1,
    show_default=True,
    help="Jobs run at once.",
)
@click.option(
    "--queue",
    "-q",
    "queues",
    multiple=True,
    help="Serve only this queue (repeatable; default: every queue).",
    shell_complete=complete.queues,
)
@click.option("--detach", "-d", is_flag=True, help="Run in the background; print its pid.")
@click.option(
    "--grace",
    help="On stop, kill jobs still running after this long and return them to pending (default: wait).",
)
@click.option("--log-json", is_flag=True, help="Log job events as JSON lines.")
@click.option("--quiet", is_flag=True, help="Log only runner events, dead and lost jobs.")
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False),
    help="Append the log to this file (default with --detach: a file per runner).",
)
@click.option(
    "--tag",
    "tags",
    multiple=True,
    help="A tag of this runner (repeatable): it claims jobs whose --requires are all its tags.",
)
@click.pass_obj
def worker_start(
    session: Session,
    count: int,
    queues: tuple[str, ...],
    detach: bool,
    grace: str | None,
    log_json: bool,
    quiet: bool,
    log_file: str | None,
    tags: tuple[str, ...],
) -> None:
    """Start a runner with COUNT workers; it runs until SIGINT, SIGTERM or `worker stop`."""
    from queuectl.durations import parse_duration
    from queuectl.models import validate_id
    from queuectl.runner.supervisor import POLL_ENV, Supervisor, poll_seconds

    grace_s = None if grace is None else parse_duration(grace, "--grace")
    for name in queues:
        validate_id(name, "queue")
    for name in tags:
        validate_id(name, "--tag")
    poll_s = poll_seconds(os.environ.get(POLL_ENV))
    queue = session.queue  # opens (and migrates) the store now: errors show here, not in a log
    detached_child = os.environ.pop(DETACHED_ENV, None) == "1"  # jobs must not inherit it
    if detach and not detached_child:
        _detach(session, log_file)
        return
    from queuectl.runner.log import EventLog

    queue.close()
    stream = None
    if log_file is not None and not detached_child:  # a detached runner's stderr is the file
        try:
            stream = open(_private(log_file), "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise click.ClickException(
                f"--log-file: cannot write {log_file}: {exc.strerror}"
            ) from None
        click.echo(f"logging to {log_file}", err=True)
    supervisor = Supervisor(
        session.target,
        count,
        list(queues) or None,
        grace_s,
        EventLog(log_json, quiet, stream),
        poll_s,
        sorted(set(tags)),
    )
    sys.exit(supervisor.run())


def _private(path: str) -> int:
    """A log file opened for appending, made 0600 if new: job output and commands go there."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)


def _detach(session: Session, log_file: str | None) -> None:
    """Run this same command again in a new session, as a runner that does not detach."""
    named = log_file is not None
    if log_file is None:
        state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        folder = os.path.join(state_home, "queuectl")
        os.makedirs(folder, mode=0o700, exist_ok=True)
        # Named after the runner's pid once it is known; until then, after this process's.
        log_file = os.path.join(folder, f"runner-starting-{os.getpid()}.log")
    env = {**os.environ, DETACHED_ENV: "1"}
    if session.target:
        env["QUEUECTL_DB"] = session.target
    log = open(_private(log_file), "ab")  # noqa: SIM115 - handed to the child
    process = subprocess.Popen(
        [sys.executable, "-m", "queuectl", *sys.argv[1:]],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        env=env,
    )
    log.close()
    if not named:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        final = os.path.join(os.path.dirname(log_file), f"runner-{stamp}-{process.pid}.log")
        os.replace(log_file, final)  # the runner keeps writing to the file it has open
        log_file = final
    deadline = time.monotonic() + 10
    pids = set()
    while time.monotonic() < deadline and process.poll() is None:
        pids = {r.pid for r in session.queue.runners()}
        if process.pid in pids:
            break
        time.sleep(0.05)
    if process.pid not in pids:
        raise click.ClickException(f"the runner did not start; see {log_file}")
    click.echo(process.pid)
    click.echo(f"runner started in the background; log: {log_file}", err=True)


@worker.command("stop")
@click.option("--timeout", help="Give up waiting after this long (exit 1); the runners still stop.")
@click.option("--cancel", is_flag=True, help="Withdraw the stop asked of runners still draining.")
@click.pass_obj
def worker_stop(session: Session, timeout: str | None, cancel: bool) -> None:
    """Ask every runner on this store to stop gracefully, and wait until they have exited.

    A stopping runner takes no new job and exits when its running jobs end; with --timeout it
    goes on draining after the command gives up. `worker stop --cancel` lets it serve again.
    """
    from queuectl.durations import parse_duration

    limit_s = None if timeout is None else parse_duration(timeout, "--timeout")
    queue = session.queue
    if cancel:
        kept = queue.withdraw_stop()
        if kept:
            click.echo(f"{_runners(kept)} no longer stopping: taking jobs again", err=True)
        else:
            click.echo("no runner is stopping", err=True)
        return
    asked = queue.request_stop()
    if not asked:
        click.echo("no runner is up", err=True)
        return
    click.echo(f"asked {_runners(asked)} to stop; waiting", err=True)
    started = time.monotonic()
    while runners := queue.runners():
        if limit_s is not None and time.monotonic() - started > limit_s:
            raise click.ClickException(_still_stopping(runners, timeout or ""))
        time.sleep(0.1)
    click.echo("every runner has stopped", err=True)


def _runners(count: int) -> str:
    return f"{count} runner{'s' if count != 1 else ''}"


def _still_stopping(runners: list[Runner], timeout: str) -> str:
    """What happens to runners still draining when `worker stop` gives up, and the ways on."""
    from queuectl.runner.liveness import host_name

    jobs = sum(len(r.running) for r in runners)
    pids = " ".join(
        str(r.pid) if r.host == host_name() else f"{r.pid} (on {r.host})" for r in runners
    )
    return (
        f"{_runners(len(runners))} still running after {timeout}, finishing {jobs} job(s) and "
        f"taking no new one; each exits when its jobs end. To stop now (running jobs are "
        f"killed and return to pending): kill -INT {pids}; to keep serving: "
        f"queuectl worker stop --cancel"
    )


@worker.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the runners as a JSON array.")
@click.pass_obj
def worker_list(session: Session, as_json: bool) -> None:
    """Runners: host, pid, workers, started, last heartbeat, status, running job ids.

    A runner that looks gone (its process ended, or silent for two leases) is listed as lost:
    its jobs stay processing until a runner recovers them, or `queuectl worker recover`.
    """
    from queuectl.cli.admin import print_runners
    from queuectl.cli.render import print_json
    from queuectl.shapes import runner_dict

    queue = session.existing_queue
    runners = [
        {**runner_dict(r), "state": "stopping" if r.stop_requested else "up"}
        for r in queue.runners()
    ]
    # Shown, not acted on: its jobs wait for a runner, or `worker recover`.
    runners += [{**runner_dict(r), "state": "lost"} for r in queue.lost_runners()]
    if as_json:
        print_json(runners)
    elif runners:
        print_runners(runners)
    else:
        click.echo("no runner is up", err=True)


@worker.command("recover")
@click.option("--json", "as_json", is_flag=True, help="Print what was recovered as JSON.")
@click.pass_obj
def worker_recover(session: Session, as_json: bool) -> None:
    """Recover what lost runners left, as a running runner would.

    Kills the leftover processes of this host's runners that are gone, unregisters every
    runner that looks gone, and runs their jobs (and any whose lease expired) again as
    `worker lost`. Running runners do this on their own; this is for when none is up.
    """
    from queuectl.cli.render import print_json

    done = session.existing_queue.recover()
    if as_json:
        print_json({"runners": done.runners, "jobs": done.jobs, "killed": done.killed})
        return
    if not done.runners and not done.jobs and not done.killed:
        click.echo("nothing to recover")
        return
    click.echo(
        f"recovered {_count(len(done.jobs), 'job')} as 'worker lost', unregistered "
        f"{_count(len(done.runners), 'lost runner')}, killed "
        f"{_count(done.killed, 'leftover process', 'leftover processes')}"
    )


def _count(number: int, one: str, many: str | None = None) -> str:
    return f"{number} {one if number == 1 else many or one + 's'}"
