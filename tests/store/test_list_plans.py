"""`list` walks the index of its filters on PostgreSQL however the jobs are spread (issue 19).

The planner picks among indexes by cost, assuming that matching rows are spread evenly. When
the jobs of a state or queue are all old, a walk of the primary key newest first, filtering,
looks as cheap as the filter's own index but reads every newer job. Each list query is
explained on a store where the filtered jobs are the oldest third, with the plan made for the
values (custom) and the one made for any value (generic: psycopg prepares a statement run five
times), and must read a handful of pages, not the thousands the other walk reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from queuectl.store import open_store
from tests.pg import fresh_database

psycopg = pytest.importorskip("psycopg")

STORED = 30_000
#: A walk of the right index reads the index's path and 50 rows' heap pages; the wrong one
#: reads the 20,000 newer jobs' pages (about 700).
MOST_PAGES = 80


@pytest.fixture(scope="module")
def skewed() -> Iterator[tuple[str, dict[str, str]]]:
    """A store whose oldest third is pending in queue `old`; the rest completed in `new`."""
    with fresh_database() as url:
        store = open_store(url)
        queries = store.db.q  # type: ignore[attr-defined]
        store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO jobs (id, command, state, queue, priority, max_retries, run_at, depends_on, "
                "cwd, env, created_at, updated_at) SELECT 'j' || x, 'true', "
                "CASE WHEN x <= %(third)s THEN 'pending' ELSE 'completed' END, "
                "CASE WHEN x <= %(third)s THEN 'old' ELSE 'new' END, "
                "0, 3, 0, '[]', '/', '{}', 0, 0 FROM generate_series(1, %(n)s) AS x",
                {"third": STORED // 3, "n": STORED},
            )
            conn.execute("VACUUM ANALYZE jobs")
        yield url, queries


FILTERS = [
    ("list_jobs_by_state", {"state": "pending", "queue": None}),
    ("list_jobs_by_queue", {"state": None, "queue": "old"}),
    ("list_jobs_by_queue_state", {"state": "pending", "queue": "old"}),
    ("list_jobs_by_queue_state", {"state": "dead", "queue": "new"}),
]


def pages_read(plan: dict[str, Any]) -> int:
    return int(plan["Shared Hit Blocks"]) + int(plan["Shared Read Blocks"])


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize(("name", "params"), FILTERS)
@pytest.mark.parametrize("before", [2**62, STORED // 6])
def test_each_filter_walks_its_own_index(
    skewed: tuple[str, dict[str, str]], mode: str, name: str, params: dict[str, Any], before: int
) -> None:
    url, queries = skewed
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET plan_cache_mode = {mode}")
        found = conn.execute(
            f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {queries[name]}",
            {**params, "limit": 50, "before": before},
            prepare=True,
        ).fetchone()
    assert found is not None
    plan = (found[0] if isinstance(found[0], list) else json.loads(found[0]))[0]["Plan"]
    assert pages_read(plan) <= MOST_PAGES, json.dumps(plan, indent=1)
