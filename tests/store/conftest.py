"""A store on the fake clock, for the contract suite (on every backend via `target`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from queuectl.store import Store, open_store
from tests.support.clock import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(target: str, clock: FakeClock) -> Iterator[Store]:
    opened = open_store(target, clock)
    yield opened
    opened.close()
