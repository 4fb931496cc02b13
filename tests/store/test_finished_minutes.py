"""What finished in each recent minute (migration 0009): the dashboard's chart and /metrics'
duration histogram read it instead of every job of the last hour (issue 19), so it must count
every attempt that ends exactly once, in its minute and duration bucket, outlive retention,
and never make two writers on PostgreSQL wait on each other's counter row.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.store import DURATION_BOUNDS_MS, Bucket, Store, open_store
from queuectl.store.queries import migrations
from tests.support.clock import FakeClock
from tests.support.fake_runner import claim, finish

LEASE_S = 30.0
MINUTE_MS = 60_000


def add(store: Store, **job: Any) -> str:
    return store.enqueue_many([new_job({"command": "true", **job})])[0].id


def run(store: Store, exit_code: int, duration_ms: int) -> None:
    """Claim the one due job and end its attempt."""
    [job_id] = claim(store)
    finish(store, job_id, exit_code, duration_ms=duration_ms)


def at_minute_start(clock: FakeClock) -> int:
    clock.advance((MINUTE_MS - clock.now_ms() % MINUTE_MS) / 1000)
    return clock.now_ms() // MINUTE_MS


def by_bound(found: dict[str, list[Bucket]]) -> dict[str, dict[int | None, tuple[int, int]]]:
    return {
        queue: {b.bound_ms: (b.count, b.total_ms) for b in buckets}
        for queue, buckets in found.items()
    }


def test_every_attempt_that_ends_counts_once_in_its_minute(store: Store, clock: FakeClock) -> None:
    first = at_minute_start(clock)
    add(store, id="flaky", queue="mail", max_retries=1)
    run(store, 1, 7)  # failed, to be retried
    add(store, id="doomed", max_retries=0)
    run(store, 1, 3_600_001)  # dead, longer than every bound
    add(store, id="dropped")
    store.cancel(["dropped"])  # never ran: not an attempt that ended
    clock.advance(61)
    run(store, 0, 51)  # flaky's second attempt completes, a minute later
    since = first * MINUTE_MS
    assert store.finished_per_minute(since) == {
        first: {"failed": 1, "dead": 1},
        first + 1: {"completed": 1},
    }
    expected = {"mail": {10: (1, 7), 100: (1, 51)}, "default": {None: (1, 3_600_001)}}
    assert by_bound(store.recent_durations(since)) == expected
    assert store.recent_durations((first + 1) * MINUTE_MS) == {"mail": [Bucket(100, 1, 51)]}

    # Retention deletes jobs, not what they did: the last hour's figures stay.
    assert store.expire(["completed", "dead"], clock.now_ms() + 1, 100) == 2
    assert by_bound(store.recent_durations(since)) == expected
    # Requeued and run again: a new attempt, counted again.
    add(store, id="again", queue="mail", max_retries=0)
    run(store, 0, 51)
    store.requeue(["again"], ["completed", "dead", "cancelled"])
    run(store, 0, 51)
    assert store.finished_per_minute(since)[first + 1] == {"completed": 3}

    store.forget_finished_minutes((first + 1) * MINUTE_MS)
    assert list(store.finished_per_minute(since)) == [first + 1]
    store.reset(False)
    assert store.finished_per_minute(since) == {}


def test_each_duration_lands_in_the_smallest_bound_that_holds_it(
    store: Store, clock: FakeClock
) -> None:
    """The migration's buckets are DURATION_BOUNDS_MS, edges included."""
    since = at_minute_start(clock) * MINUTE_MS
    durations = [0, *DURATION_BOUNDS_MS, *(bound + 1 for bound in DURATION_BOUNDS_MS)]
    for duration in durations:
        add(store)
        run(store, 0, duration)
    want: dict[int | None, tuple[int, int]] = {}
    for duration in durations:
        bound = next((b for b in DURATION_BOUNDS_MS if duration <= b), None)
        count, total = want.get(bound, (0, 0))
        want[bound] = (count + 1, total + duration)
    assert by_bound(store.recent_durations(since)) == {"default": want}


@pytest.mark.backends("postgres")
def test_two_writers_never_wait_on_one_counter_row(target: str, clock: FakeClock) -> None:
    """A runner's settlement still uncommitted holds its own counter row, not another's."""
    import psycopg

    store = open_store(target, clock)
    try:
        add(store, id="a")
        add(store, id="b")
    finally:
        store.close()
    now = clock.now_ms()
    finish = (
        "UPDATE jobs SET state = 'completed', finished_at = %s, duration_ms = 5, "
        "updated_at = %s WHERE id = %s"
    )
    with psycopg.connect(target) as holder, psycopg.connect(target) as other:
        holder.execute(finish, (now, now, "a"))  # same minute, queue, state and bucket
        other.execute("SET lock_timeout = '3s'")
        other.execute(finish, (now, now, "b"))  # waits on `holder` if they share a row
        other.commit()
        holder.commit()
    store = open_store(target, clock)
    try:
        assert store.finished_per_minute(now) == {now // MINUTE_MS: {"completed": 2}}
    finally:
        store.close()


def test_settlements_racing_on_two_connections_are_all_counted(target: str) -> None:
    """Concurrent writers add up exactly (the spread rows sum to every attempt)."""
    stores = [open_store(target), open_store(target)]
    try:
        for n in range(40):
            add(stores[0], id=f"j{n}")
        since = stores[0].now() - MINUTE_MS

        def drain(store: Store, owner: str) -> None:
            while claims := store.finish_and_claim(owner, [], 2, None, LEASE_S).claims:
                outcomes = [Outcome(c.id, c.attempt, 0, None, 20, token=c.token) for c in claims]
                store.finish_and_claim(owner, outcomes, 0, None, LEASE_S)

        threads = [
            threading.Thread(target=drain, args=(store, f"r{i}")) for i, store in enumerate(stores)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        per_minute = stores[0].finished_per_minute(since)
        assert sum(m.get("completed", 0) for m in per_minute.values()) == 40
        assert by_bound(stores[0].recent_durations(since)) == {"default": {50: (40, 800)}}
    finally:
        for store in stores:
            store.close()


def _made_at_schema_8(target: str, tmp_path: Path) -> tuple[str, Any]:
    """A store of schema 8 (the release before 0009), and a connection to write into it."""
    if not target.startswith("postgresql"):
        path = str(tmp_path / "old.db")
        conn = sqlite3.connect(path, isolation_level=None)
        for _, _, sql in migrations("sqlite")[:8]:
            conn.executescript(sql)
        conn.execute("PRAGMA user_version = 8")
        return path, conn
    import psycopg

    from tests.pg import at_schema

    conn = psycopg.connect(target, autocommit=True)
    at_schema(conn, 8)
    return target, conn


def test_an_upgraded_store_counts_what_finished_in_its_last_two_hours(
    target: str, tmp_path: Path
) -> None:
    where, conn = _made_at_schema_8(target, tmp_path)
    hour = 3_600_000
    latest = 1_000 * hour + 30_000
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    insert = (
        "INSERT INTO jobs (id, command, state, queue, priority, attempts, max_retries, run_at,"
        " cwd, created_at, updated_at, started_at, finished_at, duration_ms)"
        f" VALUES ({mark}, 'true', {mark}, 'default', 0, 1, 3, 0, '/', 0, 0, 0, {mark}, {mark})"
    )
    for row in (
        ("recent", "completed", latest, 40),
        ("failing", "failed", latest - hour, 40),
        ("ancient", "completed", latest - 3 * hour, 40),  # older than any read looks back
        ("running", "processing", None, None),
    ):
        conn.execute(insert, row)
    conn.close()
    store = open_store(where)
    try:
        assert store.finished_per_minute(0) == {
            latest // MINUTE_MS: {"completed": 1},
            (latest - hour) // MINUTE_MS: {"failed": 1},
        }
        assert store.recent_durations(0) == {"default": [Bucket(50, 2, 80)]}
    finally:
        store.close()


@pytest.mark.backends("sqlite")
def test_the_last_minutes_completions_are_counted_from_the_index_alone(target: str) -> None:
    """done_last_minute counts a busy minute's 100,000 completions: from the index of finished_at
    and state, not by reading each job's row for its state."""
    open_store(target).close()
    with sqlite3.connect(target) as conn:
        plan = " ".join(
            row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + _query("done_since"), (0,))
        )
    conn.close()
    assert "COVERING INDEX jobs_finished" in plan, plan


def _query(name: str) -> str:
    from queuectl.store.queries import load_queries

    return load_queries("sqlite")[name]
