"""A fresh PostgreSQL database per test, on the server named by QUEUECTL_TEST_PG."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = os.environ.get("QUEUECTL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database() -> Iterator[str]:
    """Until the PostgreSQL store exists, PostgreSQL tests skip (or fail under CI)."""
    reason = "the PostgreSQL store is not built yet"
    if os.environ.get("QUEUECTL_REQUIRE_PG") == "1":
        pytest.fail(reason)
    pytest.skip(reason)
    yield SERVER
