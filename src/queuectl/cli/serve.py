"""`queuectl serve`: the HTTP API and the dashboard, on FastAPI and uvicorn.

The socket is bound here, before anything says the server is up: a busy port or a bad host is
one `error:` line and exit 1. Without a token, the one kept beside the store is used (made on
first use) and the dashboard's address carrying it is printed.
"""

from __future__ import annotations

import errno
import re
import signal
import socket
import sys
from types import FrameType

import click

from queuectl.cli import Session
from queuectl.errors import QueuectlError

#: The shortest token that may guard a non-loopback address: one anyone on the network can
#: guess at must be too long to guess (32 random hex digits are 128 bits).
MIN_PUBLIC_TOKEN = 32

SIZE_UNITS = {
    "": 1,
    "b": 1,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "kb": 1000,
    "mb": 10**6,
}


def _byte_size(ctx: click.Context, param: click.Parameter, value: str) -> int:
    """`1MiB`, `512KiB`, `1000000`: a number of bytes."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*([A-Za-z]*)\s*", value)
    unit = SIZE_UNITS.get(match[2].lower()) if match else None
    if match is None or unit is None or int(match[1]) < 1:
        raise click.BadParameter(f"{value!r} is not a size such as 1MiB, 512KiB or 1000000")
    return int(match[1]) * unit


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to bind."
)
@click.option(
    "--token",
    envvar="QUEUECTL_API_TOKEN",
    metavar="T",
    help="Require `Authorization: Bearer T` on /api and /metrics (env QUEUECTL_API_TOKEN); "
    "needed to bind anything but loopback, and then at least 32 characters. Default: a token "
    "kept 0600 beside the store.",
)
@click.option(
    "--max-body",
    callback=_byte_size,
    envvar="QUEUECTL_API_MAX_BODY",
    default="1MiB",
    show_default=True,
    help="Refuse request bodies larger than this with 413 (env QUEUECTL_API_MAX_BODY).",
)
@click.option(
    "--print-url",
    is_flag=True,
    help="Print the dashboard's address with its token (as serve does on start) and exit.",
)
@click.pass_obj
def serve(
    session: Session, host: str, port: int, token: str | None, max_body: int, print_url: bool
) -> None:
    """Serve the HTTP API and the dashboard. Enqueue runs shell commands: the API is remote
    code execution for whoever can call it, so it always needs a token."""
    if print_url:
        from queuectl.api.token import stored_token

        shown = f"[{host}]" if ":" in host else host
        click.echo(f"http://{shown}:{port}/#token={token or stored_token(session.queue)}")
        return
    from queuectl.extras import require

    require(
        "queuectl serve", "server", "fastapi", "uvicorn", "prometheus_client", "fastapi_offline"
    )
    from queuectl.api.app import is_loopback

    token = token or None
    if token is None and not is_loopback(host):
        raise click.UsageError(
            f"refusing to serve {host} without a token: anyone who reaches it could run "
            f"commands; give --token or QUEUECTL_API_TOKEN, or bind 127.0.0.1"
        )
    if token is not None and len(token) < MIN_PUBLIC_TOKEN and not is_loopback(host):
        raise click.UsageError(
            f"refusing to serve {host} with a {len(token)}-character token: off this "
            f"machine it must have at least {MIN_PUBLIC_TOKEN}; make one with "
            f"QUEUECTL_API_TOKEN=$(openssl rand -hex 32)"
        )
    sock = bind(host, port)
    try:
        import uvicorn

        from queuectl.api.app import create_app

        app = create_app(session.target, token, max_body)
    except BaseException:
        sock.close()
        raise
    kind = app.state.queue.describe()["kind"]
    shown = f"[{host}]" if ":" in host else host
    port = sock.getsockname()[1]
    address = f"http://{shown}:{port}/"
    click.echo(
        f"queuectl: serving the {kind} queue on {address} (dashboard /, API /api, docs /docs); "
        "bearer token required",
        err=True,
    )
    if token is None:
        # The token was made for this store, not chosen by the user: they need it to get in.
        click.echo(f"queuectl: dashboard: {address}#token={app.state.token}", err=True)
    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again once done:
    # the handlers it restores then make that a plain exit 0, like the runner's graceful stop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or a QueuectlError (exit 1) saying why not."""
    shown = f"[{host}]" if ":" in host else host
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise QueuectlError(f"cannot bind {shown}:{port}: {reason}") from None
    sock = socket.socket(family, kind, proto)
    try:
        # As uvicorn does: a restart binds at once although the last run's connections linger.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise QueuectlError(f"port {port} is in use (on {shown})") from None
        raise QueuectlError(f"cannot bind {shown}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)
