"""The FastAPI application of `queuectl serve`: one Queue per app, bearer-token auth, errors as
`{"error": "..."}` with the status each QueuectlError names, and the dashboard's static files.

Without a token the server is meant for loopback only, where any local web page could reach it:
requests must then name a loopback Host (against DNS rebinding), and a browser's cross-origin
writes are refused by their Origin (against cross-site request forgery).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

import queuectl
from queuectl.errors import QueuectlError
from queuectl.queue import Queue
from queuectl.urls import redact_url

STATIC = Path(__file__).with_name("static")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

bearer = HTTPBearer(auto_error=False, description="the token given to `queuectl serve --token`")


def is_loopback(host: str) -> bool:
    """Whether `host` (a name or an address, IPv6 with or without brackets) is this machine only."""
    name = host.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the request carries `Authorization: Bearer TOKEN` (when a token is set)."""
    expected: str | None = request.app.state.token
    if expected is None:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


async def get_queue(request: Request) -> Queue:
    queue: Queue = request.app.state.queue
    return queue


def create_app(target: str | None, token: str | None = None) -> FastAPI:
    """The app on the store `target`; with `token`, /api and /metrics need it as a bearer token."""
    from queuectl.api import metrics, routes

    queue = Queue(target)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        queue.close()

    app = FastAPI(
        title="queuectl",
        version=queuectl.__version__,
        description=(
            "A durable background job queue for shell commands. Enqueueing runs shell "
            "commands: whoever can call this API can run code as the runner's user."
        ),
        lifespan=lifespan,
    )
    app.state.queue = queue
    app.state.token = token or None
    app.state.registry = metrics.registry(queue)

    app.add_exception_handler(QueuectlError, _queuectl_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.middleware("http")(_guard_browser_requests)

    app.include_router(routes.router)
    app.include_router(routes.metrics_router)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


async def _queuectl_error(request: Request, exc: QueuectlError) -> JSONResponse:
    return error(exc.http_status, redact_url(str(exc)))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = []
    for item in exc.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        problems.append(f"{where}: {item.get('msg', 'invalid')}" if where else item.get("msg", ""))
    return error(422, "; ".join(problems) or "invalid request")


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error(exc.status_code, str(exc.detail), exc.headers)


async def _guard_browser_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Headers for every answer; Host and Origin checks for a server without a token."""
    if request.app.state.token is None:
        host = request.headers.get("host", "")
        if not is_loopback(_hostname(host)):
            return error(403, f"host {host!r} is not a loopback name; use --token to serve others")
    origin = request.headers.get("origin")
    host = request.headers.get("host", "").lower()
    if request.method not in SAFE_METHODS and origin and urlsplit(origin).netloc.lower() != host:
        return error(403, "cross-origin requests are refused")
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    if request.url.path == "/" or request.url.path.startswith("/static/"):
        response.headers.setdefault("Content-Security-Policy", DASHBOARD_CSP)
    return response


def _hostname(host_header: str) -> str:
    """The name part of a Host header: `[::1]:8765` -> `::1`, `localhost:80` -> `localhost`."""
    if host_header.startswith("["):
        return host_header[1 : host_header.find("]")] if "]" in host_header else host_header
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header
