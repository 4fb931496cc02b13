"""`queuectl serve`: the HTTP API and the dashboard (SPEC section 7), on FastAPI and uvicorn."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click

from queuectl.cli import Session


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
    "needed to bind anything but loopback.",
)
@click.pass_obj
def serve(session: Session, host: str, port: int, token: str | None) -> None:
    """Serve the HTTP API and the dashboard. Enqueue runs shell commands: the API is remote
    code execution for whoever can call it, so keep it on loopback or behind a token."""
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
    import uvicorn

    from queuectl.api.app import create_app

    app = create_app(session.target, token)
    kind = app.state.queue.describe()["kind"]
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"queuectl: serving the {kind} queue on http://{shown}:{port}/ "
        f"(dashboard /, API /api, docs /docs){'; bearer token required' if token else ''}",
        err=True,
    )
    # uvicorn stops gracefully on SIGINT and SIGTERM, then raises the signal again once done:
    # the handlers it restores then make that a plain exit 0, like the runner's graceful stop.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_quietly)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    sys.exit(0)
