"""Fixtures shared by every test: a fresh store target on each backend, and the CLI runner.

`target` is parametrised over SQLite and PostgreSQL, so a test written once runs on both.
PostgreSQL tests use a fresh database on the server named by QUEUECTL_TEST_PG; without a
server they skip with the reason, unless QUEUECTL_REQUIRE_PG=1 (set by .ci/run) makes
that a failure.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from queuectl import Queue
from tests.support.cli import run_cli


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        action="append",
        choices=["sqlite", "postgres"],
        help="run only on these backends (default: both)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        chosen = metafunc.config.getoption("backend") or ["sqlite", "postgres"]
        only = metafunc.definition.get_closest_marker("backends")
        if only is not None:
            chosen = [name for name in chosen if name in only.args]
        metafunc.parametrize("backend", chosen)


@pytest.fixture
def target(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store target on the backend of this test's parameter."""
    if backend == "sqlite":
        yield str(tmp_path / "queue.db")
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture
def queue(target: str) -> Iterator[Queue]:
    q = Queue(target)
    yield q
    q.close()


@pytest.fixture
def cli(target: str):  # type: ignore[no-untyped-def]
    """`cli("enqueue", "--command", "true")` runs the real CLI on this test's store."""

    def call(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return run_cli(target, *args, **kwargs)

    return call
