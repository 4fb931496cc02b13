"""The FastAPI application of `queuectl serve`: one Queue per app, bearer-token auth, errors as
`{"error": "..."}` with the status each QueuectlError names, and the dashboard's static files.

Every /api route but /api/health, and /metrics, need the token (given, or the one kept beside
the store): no other local user, and no web page the user visits, can call the API. The Gate
checks it, and the body's size, before the body is read; a browser's cross-origin writes are
also refused by their Origin (against cross-site request forgery).
"""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

import queuectl
from queuectl.api import metrics, routes
from queuectl.api.gate import DEFAULT_MAX_BODY, Gate
from queuectl.api.token import stored_token
from queuectl.errors import QueuectlError
from queuectl.queue import Queue
from queuectl.store import AuditEntry
from queuectl.urls import redact_url

STATIC = Path(__file__).with_name("static")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost"})
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


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


def create_app(
    target: str | None, token: str | None = None, max_body: int = DEFAULT_MAX_BODY
) -> FastAPI:
    """The app on the store `target`; /api and /metrics need `token` as a bearer token (None:
    the token kept beside the store, made on first use); bodies over `max_body` bytes are 413."""
    queue = Queue(target)
    try:
        token = token or stored_token(queue)
    except BaseException:
        queue.close()
        raise

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
        docs_url=None,
        redoc_url=None,
    )
    app.state.queue = queue
    app.state.token = token
    app.state.registry = metrics.registry(queue)

    app.add_exception_handler(QueuectlError, _queuectl_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.middleware("http")(_guard_browser_requests)
    app.add_middleware(JsonByDefault)

    def record(entry: dict[str, Any]) -> None:
        # A request may name what no store can hold (a NUL byte in a path): the audit keeps
        # it visibly escaped rather than lose the entry.
        shown: dict[str, Any] = {
            key: value.replace("\x00", "\\0") if isinstance(value, str) else value
            for key, value in entry.items()
        }
        queue.record_audit(AuditEntry(at_ms=0, **shown))

    # added last: runs first
    app.add_middleware(Gate, token=token, max_body=max_body, lookup=queue.token_role, record=record)

    app.include_router(routes.open_router)
    app.include_router(routes.router)
    app.include_router(routes.metrics_router)

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_docs_page(app)
    return app


def _add_docs_page(app: FastAPI) -> None:
    """/docs: Swagger UI from the files that the fastapi-offline package ships, so it works
    without internet access."""
    import fastapi_offline
    from fastapi.openapi.docs import get_swagger_ui_html

    assets = Path(fastapi_offline.__file__).with_name("static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="queuectl API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},
        )

    app.mount("/docs", StaticFiles(directory=assets), name="docs")


async def _queuectl_error(request: Request, exc: QueuectlError) -> JSONResponse:
    return error(exc.http_status, redact_url(str(exc)))


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 in a user's words: which field, what was wrong, no framework vocabulary."""
    problems = []
    for item in exc.errors():
        where = ".".join(
            str(part) for part in item.get("loc", ()) if part not in ("body", "query", "path")
        )
        problems.append(_plain(item, where))
    return error(422, "; ".join(problems) or "invalid request")


def _plain(item: Any, where: str) -> str:
    """One validation problem as a sentence a user can act on."""
    kind, given = item.get("type", ""), item.get("input")
    if kind == "json_invalid":
        at = item.get("ctx", {}).get("error", "")
        return f"the body is not valid JSON ({at})" if at else "the body is not valid JSON"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{where}: expected a whole number, got {given!r}"
    if kind in ("float_parsing", "float_type"):
        return f"{where}: expected a number, got {given!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{where}: expected true or false, got {given!r}"
    if kind == "missing":
        return f"{where}: missing"
    message = str(item.get("msg", "invalid")).replace("Input should be", "should be")
    return f"{where}: {message}" if where else message


async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
    return error(exc.status_code, str(exc.detail), exc.headers)


class JsonByDefault:
    """A request body to /api without a Content-Type is read as JSON (many clients send none).
    A body that names another type is still refused: a cross-site form's text/plain must never
    be taken for a job."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("path", "").startswith("/api/"):
            headers = list(scope.get("headers") or [])
            if not any(name == b"content-type" for name, _ in headers):
                headers.append((b"content-type", b"application/json"))
                scope = {**scope, "headers": headers}
        await self.app(scope, receive, send)


async def _guard_browser_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Headers for every answer; cross-origin writes refused by their Origin."""
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
