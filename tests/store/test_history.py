"""Every attempt remembered with its own output, requeue, retention (SPEC 9.3 to 9.5), and the
upgrade of a store made by release 0.1; on the fake clock, on every backend."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.errors import NotFoundError, WrongStateError
from queuectl.models import new_job
from queuectl.store import Store, open_store
from tests.support.clock import FakeClock
from tests.support.fake_runner import claim_due, runner_row, settled

LEASE_S = 30.0
FIXTURE = Path(__file__).parent / "fixtures" / "release-0.1.db"


def add(store: Store, *jobs: dict[str, Any]) -> None:
    store.enqueue_many([new_job({"command": "true", **job}) for job in jobs])


def history(store: Store, job_id: str) -> list[tuple[Any, ...]]:
    return [(a.attempt, a.exit_code, a.error, a.runner) for a in store.history(job_id)]


def test_each_attempt_keeps_its_own_record_and_output(store: Store, clock: FakeClock) -> None:
    store.register_runner(runner("r1"))
    add(store, {"id": "a", "max_retries": 2})
    claim_due(store)
    started = clock.now_ms()
    clock.advance(1)
    settled(store, "a", 3, attempt=1, output=b"first\n")
    clock.advance(2)
    claim_due(store)
    settled(store, "a", 0, attempt=2, output=b"")
    assert history(store, "a") == [(1, 3, "exit code 3: first", "r1"), (2, 0, None, "r1")]
    first, second = store.history("a")
    assert (first.host, first.started_at_ms, first.finished_at_ms) == (
        "h1",
        started,
        started + 1000,
    )
    assert first.duration_ms == 100  # the runner's measure, not the store's
    assert second.finished_at_ms is not None
    latest = store.output("a")
    assert latest is not None
    assert (latest.attempt, latest.data) == (2, b""), "the silent retry shows nothing"
    earlier = store.output("a", 1)
    assert earlier is not None
    assert earlier.data == b"first\n"
    assert store.output("a", 3) is None


def test_a_running_attempt_is_open_and_a_lost_one_says_so(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a", "max_retries": 1})
    claim_due(store)
    [running] = store.history("a")
    assert (running.finished_at_ms, running.error) == (None, None)
    clock.advance(LEASE_S + 1)
    assert store.reap([]) == ["a"]
    [lost] = store.history("a")
    assert (lost.error, lost.duration_ms) == ("worker lost", round((LEASE_S + 1) * 1000))


def test_cancel_closes_the_running_attempt(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim_due(store)
    clock.advance(2)
    store.cancel(["a"])
    [cancelled] = store.history("a")
    assert (cancelled.error, cancelled.duration_ms) == ("cancelled", 2000)
    job = store.get("a")
    assert job is not None
    assert job.duration_ms == 2000


def test_an_attempt_given_back_leaves_no_record(store: Store) -> None:
    add(store, {"id": "a"})
    claim_due(store)
    assert store.release("r1", "a", 1)
    assert store.history("a") == []
    claim_due(store)
    assert [a.attempt for a in store.history("a")] == [1]


def test_output_cut_at_the_limit_counts_what_was_dropped(store: Store) -> None:
    add(store, {"id": "a"})
    claim_due(store)
    settled(store, "a", 0, attempt=1, output=b"tail\n", dropped=12345)
    kept = store.output("a")
    assert kept is not None
    assert kept.shown() == b"[queuectl: 12345 earlier bytes dropped]\ntail\n"


def test_requeue_runs_a_finished_job_again_with_its_history(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "done"}, {"id": "dead", "max_retries": 0}, {"id": "waiting"})
    claim_due(store, want=2)
    settled(store, "done", 0, attempt=1, output=b"ok\n")
    settled(store, "dead", 1, attempt=1, output=b"no\n")
    store.cancel(["waiting"])
    assert store.requeue(["done", "dead", "waiting"], ["completed", "dead", "cancelled"]) == [
        "done",
        "dead",
        "waiting",
    ]
    for job_id in ("done", "dead", "waiting"):
        job = store.get(job_id)
        assert job is not None
        assert (job.state, job.attempts, job.last_error, job.exit_code) == (
            "pending",
            0,
            None,
            None,
        )
    assert claim_due(store) == ["dead", "done", "waiting"]
    assert [a.attempt for a in store.history("done")] == [1, 1]
    with pytest.raises(WrongStateError, match="'done' is processing"):
        store.requeue(["done"], ["completed", "dead", "cancelled"])
    with pytest.raises(NotFoundError):
        store.requeue(["nope"], ["completed"])


def test_a_deleted_job_leaves_nothing_behind(store: Store, clock: FakeClock) -> None:
    add(store, {"id": "a"})
    claim_due(store)
    settled(store, "a", 0, attempt=1, output=b"old output\n")
    clock.advance(1)
    assert store.purge(["completed"], clock.now_ms()) == 1
    add(store, {"id": "a"})
    assert store.history("a") == []
    assert store.output("a") is None
    claim_due(store)
    assert store.save_output("r1", "a", 1, b"new") is True
    assert [a.attempt for a in store.history("a")] == [1]


def test_expire_deletes_exactly_what_is_old_enough_in_batches(
    store: Store, clock: FakeClock
) -> None:
    add(store, *({"id": f"old{n}"} for n in range(5)), {"id": "dead", "max_retries": 0})
    claim_due(store)
    for n in range(5):
        settled(store, f"old{n}", 0, attempt=1, output=b"")
    settled(store, "dead", 1, attempt=1, output=b"")
    clock.advance(10)
    add(store, {"id": "new"}, {"id": "running"})
    claim_due(store, want=2)
    settled(store, "new", 0, attempt=1, output=b"")
    cutoff = clock.now_ms() - 5_000
    assert store.expire(["completed", "cancelled"], cutoff, 2) == 2
    assert store.expire(["completed", "cancelled"], cutoff, 2) == 2
    assert store.expire(["completed", "cancelled"], cutoff, 2) == 1
    assert store.expire(["completed", "cancelled"], cutoff, 2) == 0
    left = {job.id for job in store.list_jobs().jobs}
    assert left == {"dead", "new", "running"}


def test_a_store_made_by_release_0_1_keeps_its_jobs_and_their_last_attempt(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    queue = Queue(str(path))
    try:
        assert {job.id: job.state for job in queue.list()} == {
            "done": "completed",
            "dead": "dead",
            "retrying": "failed",
            "waiting": "pending",
            "later": "pending",
        }
        assert queue.output("done") == b"done\n"
        assert queue.output("dead") == b"oops\n"
        [entry] = queue.history("retrying")
        assert (entry.attempt, entry.error, entry.duration_ms) == (1, "exit code 1", 1500)
        assert queue.history("waiting") == []
        assert queue.config()["max_retries"] == 5
    finally:
        queue.close()


def runner(name: str) -> Any:
    return runner_row(name, host="h1")


@pytest.mark.backends("postgres")
def test_a_postgres_store_of_schema_2_is_upgraded_with_its_output(target: str) -> None:
    import psycopg

    from tests.pg import at_schema

    with psycopg.connect(target, autocommit=True) as conn:
        at_schema(conn, 2)
        conn.execute(
            "INSERT INTO jobs (id, command, state, queue, priority, attempts, max_retries, run_at,"
            " cwd, created_at, updated_at, started_at, finished_at, exit_code, last_error,"
            " duration_ms) VALUES ('done', 'true', 'completed', 'default', 0, 1, 3, 0, '/', 0, 0,"
            " 10, 20, 0, NULL, 10), ('new', 'true', 'pending', 'default', 0, 0, 3, 0, '/', 0, 0,"
            " NULL, NULL, NULL, NULL, NULL)"
        )
        conn.execute("INSERT INTO job_output VALUES ('done', 'hi')")
    store = open_store(target)
    try:
        [entry] = store.history("done")
        assert (entry.attempt, entry.started_at_ms, entry.finished_at_ms) == (1, 10, 20)
        kept = store.output("done")
        assert kept is not None
        assert kept.data == b"hi"
        assert store.history("new") == []
    finally:
        store.close()
