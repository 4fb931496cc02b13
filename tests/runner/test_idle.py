"""What an idle runner costs PostgreSQL: issue 16 allows at most one query a second on average.

The server's own statistics count the runner's transactions (a lone query is one), so the count
holds whatever the client does. A count, not a timing: the bound is generous.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.support.runners import RunnerProcess

#: The windows counted, and the most transactions a second allowed (the runner makes about
#: 0.7; it made 8 when each housekeeping step and the poll were queries of their own).
IDLE_S = 6.0
MOST_PER_S = 2.0
#: The server reports a backend's transactions up to 10 s late (PGSTAT_IDLE_INTERVAL) when it
#: ran one less than a second before: past this, the runner's start-up is all counted. A flush
#: still later (a busy server may put one off for a minute) lands in one window of two.
STATS_LAG_S = 11.0


def transactions(target: str) -> int:
    """Transactions committed or rolled back in the database of `target` so far."""
    import psycopg

    from tests.pg import SERVER

    name = urlsplit(target).path.lstrip("/")
    with psycopg.connect(SERVER, autocommit=True) as admin:
        admin.execute("SELECT pg_stat_clear_snapshot()")
        row = admin.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.backends("postgres")  # SQLite has no server to count queries
def test_an_idle_runner_makes_at_most_a_query_or_two_a_second(
    target: str, start_runner: Callable[..., RunnerProcess]
) -> None:
    start_runner("--count", "2")
    time.sleep(STATS_LAG_S)  # not waiting for anything: its start-up must fall outside the count
    counts = [transactions(target)]
    for _ in range(2):
        time.sleep(IDLE_S)  # a window counted
        counts.append(transactions(target))
    made = min(later - earlier for earlier, later in itertools.pairwise(counts))
    assert made / IDLE_S <= MOST_PER_S, f"{counts}: at least {made} transactions in {IDLE_S:g} s"
