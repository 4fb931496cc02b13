"""Each poll does the same work however many jobs are stored (issue 19): `wait` with no ids,
`logs --follow`, the dashboard's job table (and the rest of its poll), `status`, `queue list`,
`/api/status`, `/api/queues` and `/metrics`.

Every statement a poll runs is recorded (the driver's connect is wrapped, so the CLI, the API
and the watchers run as they do, each on its own connections) and explained on a store of
20,000 jobs in every state over five queues, most of them finished half an hour ago: inside the
hour that /metrics' histogram and the dashboard's chart cover (they read the counts kept per
minute, migration 0009), outside the minute that `status` counts completions over (that
count follows the throughput, not the store's size). No statement may
read all of the jobs, attempts or dependencies: on SQLite, no SCAN of one of them in EXPLAIN
QUERY PLAN (a scan of a covering index included); on PostgreSQL, no Seq Scan of one, and no
more rows visited in them than the longest page a poll reads, both in the plan made for the
values and in the generic one (psycopg prepares a statement run five times, and `serve` runs
the dashboard's every two seconds). On SQLite the poll's work is also counted, in instructions
of the virtual machine: it must not grow from a store of 2,000 jobs to one of 20,000.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import types
import warnings
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from click.testing import CliRunner

from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.queue import Queue
from queuectl.runner.liveness import host_name, process_started
from queuectl.store import DURATION_BOUNDS_MS, Runner, open_store
from queuectl.store.records import EVERY_JOB

OWNER = "plans-runner"
QUEUES = ("default", "mail", "video", "reports", "sync")
BIG, SMALL = 20_000, 2_000
HOUR_MS = 3_600_000
#: Tables that grow with the jobs stored; every other table holds a row per queue, runner,
#: setting, schedule or hook, and may be scanned.
GROWING = {"jobs", "attempts", "job_deps"}
#: The most rows of the growing tables one statement may visit on PostgreSQL: the longest page
#: a poll reads is `wait`'s 100 pending jobs. Counting the 2,000 dead jobs, the smallest state
#: of the store but one, visits 20 times that.
MOST_ROWS = 150
#: The instructions of a poll on the big store, as a share of the same poll on the small one.
MOST_GROWTH = 1.1


# -- the stores


@dataclass
class Stored:
    """A store of `stored` jobs, and the ids the polls need."""

    kind: str
    target: str
    stored: int
    running: str = "running-0"
    finished: str = "ok-0"
    middle: str = ""  # a cursor of /api/jobs halfway down the store


def build(target: str, stored: int) -> Stored:
    """`stored` jobs over five queues through the store's own flows: 60% completed, 10% dead,
    5% failed (waiting to be retried), 5% cancelled, 10% delayed, 10% blocked on a delayed job;
    all of them aged half an hour (direct SQL, the same on both stores). Then, now: a few jobs
    completed and dead, 50 due, and 8 running, leased to a runner registered as this live
    process; one of them, `running-0`, has run since before all the others (its attempt is the
    oldest: a walk of the attempts newest first would pass every other one). Queue `sync` is
    paused, `mail` and `reports` limited, and a hook waits for dead jobs. Ids: `<kind>-<n>`.
    """
    store = open_store(target)
    try:
        store.set_config("backoff_base", 3600)  # the failed stay failed while this runs
        now = store.now()
        store.register_runner(
            Runner(
                id=OWNER,
                host=host_name(),
                pid=os.getpid(),
                workers=8,
                queues=None,
                started_at_ms=now,
                heartbeat_at_ms=now,
                pid_started=process_started(os.getpid()),
            )
        )
        shares = {"ok": 60, "dead": 10, "retry": 5, "cancel": 5, "later": 10}
        counts = {name: stored * share // 100 for name, share in shares.items()}
        counts["blocked"] = stored - sum(counts.values()) - 1  # the gate is one more
        options: dict[str, dict[str, Any]] = {
            "ok": {},
            "dead": {"max_retries": 0},
            "retry": {"max_retries": 3},
            "cancel": {"delay": "1d"},
            "later": {"delay": "1d"},
            "blocked": {"depends_on": ["gate"]},
        }
        jobs = [
            new_job({"id": "gate", "command": "true", "delay": "1d"}, cwd="/"),
            new_job({"id": "running-0", "command": "sleep 1d", "priority": 10}, cwd="/"),
        ]
        for n in range(max(counts.values())):  # interleaved, as jobs arrive
            for name, count in counts.items():
                if n < count:
                    fields = {"id": f"{name}-{n}", "queue": QUEUES[n % len(QUEUES)]}
                    jobs.append(new_job({"command": "true", **fields, **options[name]}, cwd="/"))
        store.enqueue_many(jobs)
        store.cancel([f"cancel-{n}" for n in range(counts["cancel"])])
        (first,) = store.finish_and_claim(OWNER, [], 1, None, 3600).claims
        assert first.id == "running-0"
        settle(store)
        with _raw(target) as execute:
            for table, columns in (
                ("jobs", "created_at, updated_at, started_at, finished_at"),
                ("attempts", "started_at, finished_at"),
            ):
                shifted = ", ".join(f"{c} = {c} - {HOUR_MS // 2}" for c in columns.split(", "))
                execute(f"UPDATE {table} SET {shifted}")
        store.enqueue_many(
            [
                new_job({"id": f"recent-{n}", "command": "true", "max_retries": 0}, cwd="/")
                for n in range(6)
            ]
        )
        settle(store)
        store.enqueue_many(
            [
                new_job({"id": f"running-{n}", "command": "true", "priority": 10}, cwd="/")
                for n in range(1, 8)
            ]
            + [
                new_job({"id": f"due-{n}", "command": "true", "queue": QUEUES[n % 5]}, cwd="/")
                for n in range(50)
            ]
        )
        claims = store.finish_and_claim(OWNER, [], 7, None, 3600).claims
        assert sorted(c.id for c in claims) == [f"running-{n}" for n in range(1, 8)]
        for claim in [first, *claims]:
            store.save_output(OWNER, claim.id, claim.attempt, b"working\n" * 10)
        newest = store.list_jobs(EVERY_JOB, 1).next_before
        assert newest is not None
    finally:
        store.close()
    with Queue(target) as queue:  # after the runs: so that what each reads is read
        queue.pause("sync")
        queue.set_queue("mail", concurrency=4)
        queue.set_queue("reports", rate="100/1m")
        queue.add_hook("notify", "dead", {"command": "true"})
    kind = "postgres" if target.startswith("postgresql://") else "sqlite"
    return Stored(kind, target, stored, middle=str(newest // 2))


def settle(store: Any) -> None:
    """Run every due job once, as a runner would: `ok-` and `recent-` jobs exit 0, the others
    1 (a failed `retry-` job waits an hour: backoff_base)."""
    outcomes: list[Outcome] = []
    while True:
        claims = store.finish_and_claim(OWNER, outcomes, 500, None, 3600).claims
        if not claims:
            return
        outcomes = [
            Outcome(
                c.id,
                c.attempt,
                0 if c.id.startswith(("ok-", "recent-0", "recent-1", "recent-2")) else 1,
                None,
                40,
                b"done\n",
                token=c.token,
            )
            for c in claims
        ]


@contextmanager
def _raw(target: str) -> Iterator[Callable[[str], object]]:
    """A plain connection of the store's driver, outside the store, for the builder's SQL."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            yield conn.execute
            conn.execute("VACUUM ANALYZE")  # as autovacuum would have by now
        return
    lite = sqlite3.connect(target, isolation_level=None)
    try:
        yield lite.execute
    finally:
        lite.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stores(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[int, Stored]]:
    """The big store (and on SQLite, the small one) of this backend, built once a module."""
    chosen = request.config.getoption("backend")
    if chosen and request.param not in chosen:
        pytest.skip(f"--backend {' '.join(chosen)}")
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("plans")
        yield {n: build(str(folder / f"{n}.db"), n) for n in (SMALL, BIG)}
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield {BIG: build(url, BIG)}


# -- recording what a poll runs


@dataclass
class Recording:
    """Each statement run, with its first row of parameters; SQLite's instructions."""

    statements: list[tuple[Any, Any]] = field(default_factory=list)
    steps: int = 0


@contextmanager
def recording(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Recording]:
    """Records every statement run on the connections opened meanwhile; closes them after."""
    found = Recording()
    opened: list[Any] = []
    with monkeypatch.context() as patch:
        if kind == "sqlite":
            real = sqlite3.connect

            class Traced(sqlite3.Connection):
                def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
                    found.statements.append((sql, parameters))
                    return super().execute(sql, parameters)

                def executemany(self, sql: str, rows: Any, /) -> sqlite3.Cursor:
                    rows = list(rows)
                    found.statements.append((sql, rows[0] if rows else ()))
                    return super().executemany(sql, rows)

            def step() -> int:
                found.steps += 1
                return 0

            def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
                conn = real(*args, factory=Traced, **kwargs)
                conn.set_progress_handler(step, 1)
                opened.append(conn)
                return conn

            patch.setattr(sqlite3, "connect", connect)
        else:
            import psycopg

            real_pg = psycopg.connect

            class TracedCursor(psycopg.Cursor[Any]):
                def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
                    found.statements.append((query, params))
                    return super().execute(query, params, **kwargs)

                def executemany(self, query: Any, params_seq: Any, **kwargs: Any) -> None:
                    rows = list(params_seq)
                    found.statements.append((query, rows[0] if rows else None))
                    super().executemany(query, rows, **kwargs)

            def connect_pg(*args: Any, **kwargs: Any) -> Any:
                conn = real_pg(*args, cursor_factory=TracedCursor, **kwargs)
                opened.append(conn)
                return conn

            patch.setattr(psycopg, "connect", connect_pg)
        try:
            yield found
        finally:
            for conn in opened:
                conn.close()


# -- the polls


class OnePoll(Exception):
    """Raised where a watcher would sleep before its next poll."""


def _one_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from queuectl.cli import follow

    def sleep(seconds: float) -> None:
        raise OnePoll

    monkeypatch.setattr(
        follow, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    )


def cli(store: Stored, *args: str, polls: bool = False) -> None:
    """The command in this process (its exceptions not turned into exit codes)."""
    from queuectl.cli import cli as group

    result = CliRunner().invoke(group, ["--db", store.target, *args])
    if polls:
        assert isinstance(result.exception, OnePoll), (result.output, result.exception)
    else:
        assert result.exit_code == 0, (result.output, result.exception)


def api(store: Stored, *paths: str) -> None:
    with warnings.catch_warnings():
        # Starlette deprecates its httpx-based TestClient in favour of a package we do not ship.
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from queuectl.api.app import create_app

    token = "plans-token"
    app = create_app(store.target, token)
    with TestClient(
        app, base_url="http://127.0.0.1:8765", headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for path in paths:
            client.get(path.format(middle=store.middle)).raise_for_status()


def _follow_finished(store: Stored) -> None:
    from queuectl.cli.follow import follow_output

    with Queue(store.target) as queue:
        assert follow_output(queue, store.finished, io.BytesIO()) == 0


POLLS: dict[str, Callable[[Stored], None]] = {
    "wait": lambda s: cli(s, "wait", polls=True),
    "logs --follow (running)": lambda s: cli(s, "logs", "--follow", s.running, polls=True),
    "logs --follow (finished)": _follow_finished,
    "status": lambda s: cli(s, "status"),
    "queue list": lambda s: cli(s, "queue", "list"),
    "dashboard job table": lambda s: api(
        s,
        "/api/jobs?limit=50",
        "/api/jobs?limit=50&cursor={middle}",
        "/api/jobs?limit=50&state=pending",
        "/api/jobs?limit=50&queue=sync",
        "/api/jobs?limit=50&state=dead&queue=mail&cursor={middle}",
    ),
    "dashboard, the rest of its poll": lambda s: api(
        s, "/api/dlq?limit=100", "/api/stats/throughput", "/api/hooks"
    ),
    "GET /api/status": lambda s: api(s, "/api/status"),
    "GET /api/queues": lambda s: api(s, "/api/queues"),
    "GET /metrics": lambda s: api(s, "/metrics"),
}


def run_poll(name: str, store: Stored, monkeypatch: pytest.MonkeyPatch) -> Recording:
    _one_poll(monkeypatch)
    with recording(store.kind, monkeypatch) as found:
        POLLS[name](store)
    assert found.statements, "nothing recorded: the poll ran no statement?"
    return found


# -- explaining


EXPLAINABLE = re.compile(r"\s*(?:--[^\n]*\n\s*)*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.I)


def sqlite_scans(target: str, statements: list[tuple[Any, Any]]) -> dict[str, str]:
    """The statements whose plan scans a growing table, with their plans."""
    conn = sqlite3.connect(target)
    try:
        found: dict[str, str] = {}
        for sql, params in statements:
            if not EXPLAINABLE.match(sql):
                continue
            plan = [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
            # `FROM jobs AS held`: the plan names the alias
            aliases = {a: t for t, a in re.findall(r"\b(\w+)\s+AS\s+(\w+)", sql, re.I)}
            for line in plan:
                words = line.split()
                if words[0] == "SCAN" and aliases.get(words[1], words[1]) in GROWING:
                    found[sql] = "\n".join(plan)
        return found
    finally:
        conn.close()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def pg_reads(url: str, statements: list[tuple[Any, Any]]) -> dict[str, str]:
    """The statements that scan a growing table or visit more than MOST_ROWS of its rows, in
    the custom or the generic plan (each run by EXPLAIN ANALYZE, then rolled back)."""
    import psycopg

    found: dict[str, str] = {}
    with ExitStack() as stack:
        for mode in ("force_custom_plan", "force_generic_plan"):
            conn = stack.enter_context(psycopg.connect(url, autocommit=True))
            conn.execute(f"SET plan_cache_mode = {mode}")
            for query, params in statements:
                text = query if isinstance(query, str) else query.as_string(conn)
                if not EXPLAINABLE.match(text):
                    continue
                with conn.transaction(force_rollback=True):
                    row = conn.execute(
                        f"EXPLAIN (ANALYZE, FORMAT JSON) {text}", params, prepare=True
                    ).fetchone()
                assert row is not None
                plan = (row[0] if isinstance(row[0], list) else json.loads(row[0]))[0]["Plan"]
                visited = 0
                for node in _nodes(plan):
                    if node.get("Relation Name") not in GROWING:
                        continue
                    if node["Node Type"] == "Seq Scan":
                        visited += 1_000_000_000
                    rows = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
                    visited += rows * node["Actual Loops"]
                if visited > MOST_ROWS:
                    found[f"{mode}: {text}"] = json.dumps(plan, indent=1)
    return found


# -- the tests


@pytest.mark.timeout(300)
@pytest.mark.parametrize("poll", list(POLLS))
def test_no_statement_of_a_poll_reads_every_job(
    poll: str, stores: dict[int, Stored], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = stores[BIG]
    found = run_poll(poll, store, monkeypatch)
    if store.kind == "sqlite":
        scans = sqlite_scans(store.target, found.statements)
    else:
        scans = pg_reads(store.target, found.statements)
    assert not scans, "\n\n".join(f"{sql}\n{plan}" for sql, plan in scans.items())


@pytest.mark.parametrize("poll", list(POLLS))
def test_a_poll_costs_the_same_on_a_store_ten_times_bigger(
    poll: str, stores: dict[int, Stored], monkeypatch: pytest.MonkeyPatch
) -> None:
    if SMALL not in stores:
        pytest.skip("SQLite counts instructions; PostgreSQL's rows visited are bounded above")
    small = run_poll(poll, stores[SMALL], monkeypatch).steps
    big = run_poll(poll, stores[BIG], monkeypatch).steps
    assert big <= small * MOST_GROWTH, (small, big)


def test_metrics_reads_counters_whose_rows_do_not_grow_with_the_jobs(
    stores: dict[int, Stored], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The counters that only go up are read by /metrics from a table of a few rows per queue
    (and, on PostgreSQL, the deltas appended since their last compaction, which the read
    folds in once they pile up): not grown by the jobs stored, nor by those that ran."""
    # Per queue: enqueued pending or cancelled; finished without an attempt; an attempt's
    # (outcome, state reached) pairs, each in any bucket.
    most = len(QUEUES) * (2 + 3 + 8 * (len(DURATION_BOUNDS_MS) + 2))
    rows = {}
    for stored, store in stores.items():
        found = run_poll("GET /metrics", store, monkeypatch)
        assert any("FROM counters" in str(sql) for sql, _ in found.statements)
        with _raw(store.target) as execute:
            rows[stored] = execute("SELECT COUNT(*) FROM counters").fetchone()[0]
            if store.kind == "postgres":
                piled = execute("SELECT COUNT(*) FROM counter_deltas").fetchone()[0]
                assert piled <= 1000
        assert 0 < rows[stored] <= most
    assert len(set(rows.values())) == 1, rows
