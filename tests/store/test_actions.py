"""Bulk changes of many jobs (issue 26): a cancel reads the jobs it cancels and their dependants,
not every pending job once per job; a bulk cancel commits in batches that let other clients'
writes in; counts and hooks stay exact; a job run again counts only the dependencies it still
has, not a new job that took a deleted one's id. On every backend.

The plan test explains each statement a cancel runs just before it runs (on PostgreSQL with
EXPLAIN ANALYZE in a savepoint rolled back), on the store as the statement finds it: a store
of PENDING pending jobs, of which the cancel concerns a few dozen.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from typing import Any

import pytest

from queuectl import Queue
from queuectl.explain import explain_job
from queuectl.models import new_job
from queuectl.store import Hook, JobFilter, Store, open_store
from tests.store.test_counters import check_exact
from tests.support import fake_runner
from tests.support.clock import FakeClock
from tests.support.fake_runner import claim_due

LEASE_S = 30.0
#: The attempts of this file end having printed nothing.
finish = partial(fake_runner.finish, output=b"")

#: Pending jobs stored beside those a cancel concerns.
PENDING = 20_000
#: The most rows of the growing tables one statement may visit on PostgreSQL: a batch of
#: BATCH jobs, their rows read by id, a few times over, and their dependants.
BATCH = 50
MOST_ROWS = 4 * BATCH
GROWING = {"jobs", "attempts", "job_deps"}


def add(store: Store, *jobs: dict[str, Any]) -> None:
    store.enqueue_many([new_job({"command": "true", **job}) for job in jobs])


def state(store: Store, job_id: str) -> str:
    job = store.get(job_id)
    assert job is not None
    return job.state


def chains(prefix: str, n: int, queue: str = "default") -> list[dict[str, Any]]:
    """N chains of three jobs (`<prefix>a<i>` <- b <- c: each depends on the one before)."""
    jobs: list[dict[str, Any]] = []
    for i in range(n):
        a, b, c = (f"{prefix}{letter}{i}" for letter in "abc")
        jobs += [
            {"id": a, "queue": queue},
            {"id": b, "queue": queue, "depends_on": [a]},
            {"id": c, "queue": queue, "depends_on": [b]},
        ]
    return jobs


# -- the plans


@contextmanager
def explaining(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Each statement run on the connections opened meanwhile, with its plan as it was about to
    run: SQLite's EXPLAIN QUERY PLAN lines; PostgreSQL's EXPLAIN ANALYZE of the custom and the
    generic plan, each run in a savepoint rolled back (or outside a transaction, for a read)."""
    found: list[tuple[str, Any]] = []
    opened: list[Any] = []

    def explainable(sql: str) -> bool:
        words = [line for line in sql.strip().splitlines() if not line.lstrip().startswith("--")]
        return bool(words) and words[0].split()[0].upper() in ("SELECT", "WITH", "UPDATE", "DELETE")

    with monkeypatch.context() as patch:
        if kind == "sqlite":
            real = sqlite3.connect

            class Explained(sqlite3.Connection):
                def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
                    if explainable(sql):
                        plan = super().execute(f"EXPLAIN QUERY PLAN {sql}", parameters)
                        found.append((sql, [row[3] for row in plan.fetchall()]))
                    return super().execute(sql, parameters)

            def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
                conn = real(*args, factory=Explained, **kwargs)
                opened.append(conn)
                return conn

            patch.setattr(sqlite3, "connect", connect)
        else:
            import psycopg

            real_pg = psycopg.connect

            class Explained(psycopg.Cursor[Any]):  # type: ignore[no-redef]
                def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                    text = query if isinstance(query, str) else query.as_string(self.connection)
                    if explainable(text):
                        for mode in ("force_custom_plan", "force_generic_plan"):
                            found.append((f"{mode}: {text}", self._explain(text, params, mode)))
                    return super().execute(query, params, **kwargs)

                def _explain(self, text: str, params: Any, mode: str) -> Any:
                    """The plan made for the values or for any value (psycopg prepares a
                    statement run five times), run and undone."""
                    idle = psycopg.pq.TransactionStatus.IDLE
                    inside = self.connection.info.transaction_status != idle
                    if inside:
                        super().execute("SAVEPOINT explained")
                    super().execute(f"SET {'LOCAL ' if inside else ''}plan_cache_mode = {mode}")
                    explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {text}"
                    row = super().execute(explain, params, prepare=True).fetchone()
                    assert row is not None
                    if inside:
                        super().execute("ROLLBACK TO SAVEPOINT explained")
                    else:
                        super().execute("RESET plan_cache_mode")
                    plan = row[0] if isinstance(row, tuple) else next(iter(row.values()))
                    return plan[0]["Plan"]

            def connect_pg(*args: Any, **kwargs: Any) -> Any:
                conn = real_pg(*args, cursor_factory=Explained, **kwargs)
                opened.append(conn)
                return conn

            patch.setattr(psycopg, "connect", connect_pg)
        try:
            yield found
        finally:
            for conn in opened:
                conn.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def wide_reads(kind: str, explained: list[tuple[str, Any]]) -> list[str]:
    """The statements that read more than the jobs they name: on SQLite a scan of a growing
    table, or a search of the jobs by anything but their id or a range of seq or finished_at
    (a search by state alone reads every job in the state); on PostgreSQL a Seq Scan of a
    growing table, or more than MOST_ROWS of their rows visited."""
    wide = []
    for sql, plan in explained:
        if kind == "sqlite":
            for line in plan:
                words = line.split()
                table = words[1] if len(words) > 1 else ""
                if words[0] == "SCAN" and table in GROWING:
                    wide.append(f"{sql}\n{line}")
                elif words[0] == "SEARCH" and table == "jobs" and "USING" in words:
                    keys = line[line.find("(") :]
                    if not any(k in keys for k in ("id=", "rowid", "seq>", "seq<", "finished_at")):
                        wide.append(f"{sql}\n{line}")
            continue
        visited = 0
        for node in _nodes(plan):
            if node.get("Relation Name") not in GROWING:
                continue
            if node["Node Type"] == "Seq Scan":
                visited += 1_000_000_000
            rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            visited += rows * node["Actual Loops"]
        if visited > MOST_ROWS:
            wide.append(f"{sql}\n{json.dumps(plan, indent=1)}")
    return wide


@pytest.fixture
def crowded(target: str) -> str:
    """A store of PENDING pending jobs in queue `crowd`, each with a dependency edge (to a job
    the store does not hold: job_deps as big as the jobs), and chains in queues `x` and `y`."""
    with closing(open_store(target)) as store:
        store.enqueue_many([new_job({"command": "true", "queue": "crowd"})] * PENDING)
        add(store, *chains("x", 10, "x"), *chains("y", 20, "y"))
    edges = "INSERT INTO job_deps (dep_id, job_id) SELECT id, id || '-next' FROM jobs"
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(f"{edges} WHERE queue = 'crowd'")
    else:
        with closing(sqlite3.connect(target)) as lite, lite:
            lite.execute(f"{edges} WHERE queue = 'crowd'")
    return target


def test_a_cancel_reads_the_jobs_it_cancels_not_every_pending_job(
    crowded: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with explaining(backend, monkeypatch) as explained, closing(open_store(crowded)) as store:
        cancelled = store.cancel(["xa0", "xa1", "xb2"])
    assert [job.id for job in cancelled] == ["xa0", "xa1", "xb2"]
    assert explained, "nothing explained: no statement ran?"
    wide = wide_reads(backend, explained)
    assert not wide, "\n\n".join(wide)


def test_a_bulk_cancel_reads_each_batch_not_every_pending_job(
    crowded: str, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with explaining(backend, monkeypatch) as explained, closing(open_store(crowded)) as store:
        assert store.cancel_all("y", batch=BATCH) == 60
    wide = wide_reads(backend, explained)
    assert not wide, "\n\n".join(wide)


# -- batches


def test_other_clients_write_between_the_batches_of_a_bulk_cancel(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From inside the progress callback (a batch just committed), another client enqueues and
    claims at once, under a short busy timeout: the bulk cancel holds no lock between batches.
    The job enqueued after it began is not cancelled; the one claimed meanwhile is."""
    monkeypatch.setenv("QUEUECTL_BUSY_TIMEOUT_S", "0.2")
    monkeypatch.setenv("PGOPTIONS", "-c lock_timeout=200")
    store, other = open_store(target, FakeClock()), open_store(target, FakeClock())
    try:
        add(store, *({"id": f"j{n:03}"} for n in range(100)))
        seen: list[int] = []
        claimed: list[str] = []

        def progress(done: int) -> None:
            seen.append(done)
            if len(seen) == 1:
                add(other, {"id": "later"})
                claimed.extend(claim_due(other, want=1))

        assert store.cancel_all(batch=10, progress=progress) == 100
        assert seen == sorted(set(seen)), seen
        assert (seen[0], seen[-1]) == (10, 100)
        assert len(claimed) == 1
        assert claimed[0] > "j009"  # one the first batch had not reached
        assert state(store, claimed[0]) == "cancelled"
        assert state(store, "later") == "pending"
        assert store.counts() == {"default": {"cancelled": 100, "pending": 1}}
    finally:
        store.close()
        other.close()


def test_a_bulk_cancel_cascades_and_fires_each_hook_once(store: Store, clock: FakeClock) -> None:
    store.add_hook(Hook("note", ["cancelled"], None, {"command": "true", "queue": "notes"}, 0))
    add(store, *chains("p", 7))  # a chain's links fall in different batches of 4
    add(store, {"id": "done"}, {"id": "late", "depends_on": ["done"]})
    assert claim_due(store, want=1) == ["pa0"]
    assert claim_due(store, owner="r2", want=1) == ["pa1"]
    assert finish(store, "pa1", 1, owner="r2") == "failed"  # waits for its retry
    assert claim_due(store, owner="r3", want=1) == ["pa2"]  # runs while cancelled
    assert store.cancel_all("default", batch=4) == 7 * 3 + 2
    hooked = sorted(
        job.made_by for job in store.list_jobs(JobFilter(queues=["notes"])).jobs if job.made_by
    )
    assert hooked == sorted(
        f"hook note: cancelled of {job_id}" for job_id in every("default", store)
    )
    for i in range(7):
        assert {state(store, f"p{x}{i}") for x in "abc"} == {"cancelled"}
    check_exact(store, clock)
    assert store.cancel_all("default", batch=4) == 0


def every(queue: str, store: Store) -> list[str]:
    return [job.id for job in store.list_jobs(JobFilter(queues=[queue])).jobs]


def test_a_named_cancel_of_a_job_and_its_dependant_cancels_both(store: Store) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"]}, {"id": "c", "depends_on": ["b"]})
    assert [job.id for job in store.cancel(["a", "b"])] == ["a", "b"]
    assert [(state(store, j), store.get(j).last_error) for j in "abc"] == [  # type: ignore[union-attr]
        ("cancelled", "cancelled"),
        ("cancelled", "cancelled"),
        ("cancelled", "dependency b is cancelled"),
    ]


def test_bulk_retry_and_purge_go_in_batches(store: Store, clock: FakeClock) -> None:
    add(store, *({"id": f"d{n:02}", "max_retries": 0} for n in range(25)))
    assert len(claim_due(store, want=25)) == 25
    for n in range(25):
        assert finish(store, f"d{n:02}", 1) == "dead"
    seen: list[int] = []
    retried = store.requeue(None, ["dead"], batch=10, progress=seen.append)
    # Within a batch the store returns them in no promised order.
    assert sorted(retried) == [f"d{n:02}" for n in range(25)]
    assert seen == [10, 20, 25]
    assert len(claim_due(store, want=25)) == 25
    for n in range(25):
        clock.advance(1)
        assert finish(store, f"d{n:02}", 0) == "completed"
    seen.clear()
    assert store.purge(["completed"], clock.now_ms() - 4_500, batch=7, progress=seen.append) == 20
    assert seen == [7, 14, 20]
    assert sorted(every("default", store)) == ["d20", "d21", "d22", "d23", "d24"]
    check_exact(store, clock)


def test_a_bulk_retry_runs_each_dead_job_again_once_while_a_runner_runs_them(
    store: Store,
) -> None:
    """A job retried by an early batch, run by a runner and dead again before the retry ends,
    is not retried a second time by the same `dlq retry --all` (nor is the retry endless)."""
    add(store, *({"id": f"d{n}", "max_retries": 0} for n in range(4)))
    assert len(claim_due(store, want=4)) == 4
    for n in range(4):
        assert finish(store, f"d{n}", 1) == "dead"

    def runner_kills_them(done: int) -> None:  # between the batches: the runner's turn
        assert done <= 4, "a job retried twice by one bulk retry"
        for job_id in claim_due(store, owner="r2"):
            assert finish(store, job_id, 1, owner="r2") == "dead"

    retried = store.requeue(None, ["dead"], batch=2, progress=runner_kills_them)
    assert retried == ["d0", "d1", "d2", "d3"]
    assert all(len(store.history(f"d{n}")) == 2 for n in range(4))


@pytest.mark.parametrize("batch", [1, 1000])
def test_a_bulk_retry_leaves_dead_the_jobs_whose_unique_key_an_active_job_holds(
    store: Store, batch: int
) -> None:
    """Two dead jobs of one unique key, and one whose key a pending job holds: a bulk retry
    retries the first of the two and every other job, and leaves the rest dead, where it
    stopped at the first refusal (and did so again when run again, the key still held)."""
    add(store, {"id": "a", "unique_key": "k", "max_retries": 0})
    add(store, {"id": "h", "unique_key": "held", "max_retries": 0})
    assert claim_due(store) == ["a", "h"]
    assert finish(store, "a", 1) == "dead"
    assert finish(store, "h", 1) == "dead"
    add(store, {"id": "b", "unique_key": "k", "max_retries": 0}, {"id": "c", "max_retries": 0})
    assert claim_due(store) == ["b", "c"]
    assert finish(store, "b", 1) == "dead"
    assert finish(store, "c", 1) == "dead"
    add(store, {"id": "holder", "unique_key": "held", "delay": "1h"})

    assert store.requeue(None, ["dead"], batch=batch) == ["a", "c"]
    assert [state(store, i) for i in "abch"] == ["pending", "dead", "pending", "dead"]
    assert store.requeue(None, ["dead"], batch=batch) == []


def test_a_bulk_retry_of_a_queue_leaves_dead_a_job_whose_dependency_stays_dead(
    store: Store,
) -> None:
    """b of queue `q` depends on a of another queue; both dead. A bulk retry of `q` cannot run
    b (it would wait for a forever): it leaves b dead and retries the rest of `q`, where it
    stopped at b, run again or not."""
    add(store, {"id": "a", "queue": "p", "max_retries": 0})
    add(store, {"id": "b", "queue": "q", "depends_on": ["a"], "max_retries": 0})
    assert claim_due(store) == ["a"]
    assert finish(store, "a", 0) == "completed"
    assert claim_due(store) == ["b"]
    assert finish(store, "b", 1) == "dead"
    assert store.requeue(["a"], ["completed"]) == ["a"]
    assert claim_due(store) == ["a"]
    assert finish(store, "a", 1) == "dead"
    add(store, {"id": "c", "queue": "q", "max_retries": 0})
    assert claim_due(store) == ["c"]
    assert finish(store, "c", 1) == "dead"

    assert store.requeue(None, ["dead"], "q", batch=1) == ["c"]
    assert [state(store, i) for i in "abc"] == ["dead", "dead", "pending"]


# -- a dependency deleted, its id taken by a new job


@pytest.mark.parametrize("deleted_by", ["purge", "expire"])
@pytest.mark.parametrize("run_again", ["requeue", "dlq retry"])
def test_a_job_run_again_does_not_wait_for_a_new_job_that_took_its_dependencys_id(
    store: Store, clock: FakeClock, target: str, deleted_by: str, run_again: str
) -> None:
    add(store, {"id": "a"}, {"id": "b", "depends_on": ["a"], "max_retries": 0})
    assert claim_due(store) == ["a"]
    assert finish(store, "a", 0) == "completed"
    clock.advance(3600)
    assert claim_due(store) == ["b"]
    assert finish(store, "b", 1 if run_again == "dlq retry" else 0) in ("dead", "completed")
    before = clock.now_ms() - 1000  # a finished before, b after
    if deleted_by == "purge":
        assert store.purge(["completed"], before) == 1
    else:
        assert store.expire(["completed"], before, 100) == 1
    add(store, {"id": "a", "delay": "1h"})  # a new job under the deleted one's id
    states = ["dead"] if run_again == "dlq retry" else ["completed", "dead", "cancelled"]
    assert store.requeue(["b"], states) == ["b"]
    with Queue(target, clock) as queue:
        assert explain_job(queue, "b")["reason"] == "no_runner"  # due; not waiting for a
        assert claim_due(store) == ["b"], "b waits for the new job a, which nothing links it to"
        assert queue.dependencies("b") == {}
