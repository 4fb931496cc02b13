"""Fixtures of the API tests: a TestClient on a fresh store of each backend, jobs driven into
any state through the real store, a real `queuectl serve` subprocess, and one Chromium per module.

Browser tests skip with the reason when Playwright or /usr/bin/chromium is missing, unless
QUEUECTL_REQUIRE_BROWSER=1 makes that a failure.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.store import Runner
from tests.support.server import Server, free_port

with warnings.catch_warnings():
    # Starlette deprecates its httpx-based TestClient in favour of a package we do not ship.
    warnings.filterwarnings(
        "ignore",
        message="Using `httpx` with `starlette.testclient` is deprecated",
        category=UserWarning,
    )
    from fastapi.testclient import TestClient

from queuectl.api.app import create_app
from tests.support import fake_runner

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
OWNER = "api-test-runner"
#: the token of clients and servers started without one: the API always needs a token
TEST_TOKEN = "api-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: needs Playwright and /usr/bin/chromium")


# -- the app in process


@pytest.fixture
def make_client(target: str) -> Iterator[Callable[..., TestClient]]:
    """`make_client(token=None)`: a TestClient on a fresh app over this test's store.

    Without `token` the app has TEST_TOKEN and the client sends it on every request; with one,
    the client sends nothing by itself (tests of the token pass their own headers).
    """
    clients: list[TestClient] = []

    def make(token: str | None = None, **kwargs: Any) -> TestClient:
        if token is None:
            kwargs["headers"] = {**AUTH, **kwargs.get("headers", {})}
        app = create_app(target, token or TEST_TOKEN)
        client = TestClient(app, base_url="http://127.0.0.1:8765", **kwargs)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


# -- jobs in any state, through the real store


def claim(queue: Queue, want: int = 1, queues: list[str] | None = None) -> list[Any]:
    """Claim up to `want` due jobs (of `queues`) as a runner would: they become processing."""
    return fake_runner.claims(queue._store, want, queues, owner=OWNER)


def finish(queue: Queue, job_id: str, exit_code: int = 1, output: bytes | None = None) -> None:
    """End the running attempt of `job_id` with `exit_code` (0 completes it)."""
    fake_runner.settle(
        queue._store, job_id, exit_code, owner=OWNER, output=output, duration_ms=1500
    )


def run_once(
    q: Queue, command: str, exit_code: int, output: bytes | None = None, /, **options: Any
) -> str:
    """Enqueue a job, claim it and end its attempt: exit 0 completes it, else (max_retries 0) dead.

    Only the job's queue is claimed from: keep other jobs of that queue out of the way.
    """
    options.setdefault("max_retries", 0)
    job = q.enqueue(command, **options)
    fake_runner.run(q._store, job.id, exit_code, owner=OWNER, output=output, duration_ms=1500)
    return job.id


def register_runner(queue: Queue, workers: int = 2) -> Runner:
    """Register this test process as a live runner (its pid is alive, so it is not reaped)."""
    return fake_runner.register_live(queue._store, OWNER, workers)


# -- a real server


@pytest.fixture
def serve(target: str) -> Iterator[Callable[..., Server]]:
    """`serve(token=None)` starts `queuectl serve` on this test's store; stopped at the end."""
    servers: list[Server] = []

    def start(token: str | None = None) -> Server:
        server = Server(target, token)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class LiveServer:
    """The app under uvicorn in a thread of this process: real HTTP, without the ~2 s that a
    `queuectl serve` process spends importing FastAPI (the dashboard tests start many)."""

    def __init__(self, target: str, token: str | None) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {token or TEST_TOKEN}"}
        config = uvicorn.Config(
            create_app(target, token or TEST_TOKEN),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            ws="none",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the in-process server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live(target: str) -> Iterator[Callable[..., LiveServer]]:
    """`live(token=None)` serves the app over HTTP in this process, on this test's store."""
    servers: list[LiveServer] = []

    def start(token: str | None = None) -> LiveServer:
        server = LiveServer(target, token)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


# -- the browser


def _missing_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module's tests."""
    reason = _missing_browser()
    if reason:
        if os.environ.get("QUEUECTL_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; `page.errors` collects console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    new_page.errors = errors
    new_page.set_default_timeout(10_000)
    yield new_page
    context.close()


DOCS = Path(__file__).resolve().parents[2] / "docs"
