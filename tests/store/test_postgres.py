"""PostgreSQL-specific behaviour of the PostgreSQL store: concurrent claims across processes,
LISTEN/NOTIFY wakeups, surviving broken connections and outages, and errors in our words."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from queuectl.errors import DuplicateJobError, StoreError
from queuectl.lifecycle import Outcome
from queuectl.models import new_job
from queuectl.store import open_store
from queuectl.store.queries import migrations
from tests.pg import SERVER, empty_database, fresh_database
from tests.support.cli import run_cli
from tests.support.clock import FakeClock

psycopg = pytest.importorskip("psycopg")


NEWEST = migrations("postgres")[-1][0]


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as fresh:
        yield fresh


@pytest.fixture
def store(url: str) -> Iterator[Any]:
    opened = open_store(url, FakeClock())
    yield opened
    opened.close()


def admin(query: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(SERVER, autocommit=True) as conn:
        cursor = conn.execute(query, params or None)
        return cursor.fetchall() if cursor.description else []


def terminate(pid: int) -> None:
    """Kill one backend, and wait until the server has let it go."""
    admin("SELECT pg_terminate_backend(%s)", pid)
    deadline = time.monotonic() + 10
    while admin("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid):
        assert time.monotonic() < deadline, "the backend did not exit"
        time.sleep(0.01)


def readable(fd: Any, timeout: float) -> bool:
    return bool(select.select([fd], [], [], timeout)[0])


CLAIMER = textwrap.dedent(
    """
    import json, sys, time
    from queuectl.lifecycle import Outcome
    from queuectl.store import open_store

    store = open_store(sys.argv[1])
    owner = sys.argv[2]
    sys.stdout.write("ready\\n"); sys.stdout.flush()
    sys.stdin.readline()  # start together
    claimed, outcomes = [], []
    while True:
        claims = store.finish_and_claim(owner, outcomes, 10, None, 60).claims
        now = store.clock.now_ms()
        outcomes = [Outcome(c.id, c.attempt, 0, None, 0, token=c.token) for c in claims]
        claimed += [c.id for c in claims]
        if not claims:
            break
    store.close()
    print(json.dumps(claimed))
    """
)


def test_processes_claiming_concurrently_take_each_job_exactly_once(url: str) -> None:
    store = open_store(url)
    try:
        store.enqueue_many([new_job({"command": "true"}) for _ in range(2000)])
        claimers = [
            subprocess.Popen(
                [sys.executable, "-c", CLAIMER, url, f"r{n}"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for n in range(6)
        ]
        for claimer in claimers:
            assert claimer.stdout is not None
            assert claimer.stdout.readline() == "ready\n"
        for claimer in claimers:
            assert claimer.stdin is not None
            claimer.stdin.write("go\n")
            claimer.stdin.flush()
        taken = [json.loads(claimer.communicate(timeout=120)[0]) for claimer in claimers]
        assert all(claimer.returncode == 0 for claimer in claimers)
        every = [job_id for ids in taken for job_id in ids]
        assert len(every) == 2000
        assert len(set(every)) == 2000
        assert sum(1 for ids in taken if ids) >= 2, "the claims were not concurrent"
        assert store.counts() == {"default": {"completed": 2000}}
        jobs = store.list_jobs().jobs
        assert {job.attempts for job in jobs} == {1}
    finally:
        store.close()


def test_claim_takes_several_in_order_while_another_transaction_holds_some(store: Any) -> None:
    store.enqueue_many(
        [new_job({"command": "true", "id": f"j{n}", "priority": n % 3}) for n in range(9)]
    )
    # Another session locks the best job: SKIP LOCKED takes the next ones instead of waiting.
    with psycopg.connect(store.db.url, autocommit=True) as other, other.transaction():
        other.execute("SELECT 1 FROM jobs WHERE id = 'j8' FOR UPDATE")
        started = time.monotonic()
        claims = store.finish_and_claim("r1", [], 4, None, 30).claims
        assert time.monotonic() - started < 2
    assert [c.id for c in claims] == ["j2", "j5", "j1", "j4"]


def test_listener_wakes_after_an_enqueue_from_another_connection(url: str) -> None:
    runner_store = open_store(url)
    listener = runner_store.listener("r1")
    assert listener is not None
    client = open_store(url)
    try:
        assert not readable(listener, 0.2)
        client.enqueue_many([new_job({"command": "true"})])
        assert readable(listener, 5), "no wakeup after enqueue"
        listener.drain()
        assert not readable(listener, 0.2), "drain left the wakeup pending"
        client.set_paused("q", True)
        assert readable(listener, 5), "no wakeup after pause"
        listener.drain()
        # a rolled-back enqueue (duplicate id) wakes nobody
        with pytest.raises(DuplicateJobError):
            client.enqueue_many([new_job({"command": "true", "id": "a"})] * 2)
        assert not readable(listener, 0.3)
    finally:
        listener.close()
        client.close()
        runner_store.close()


def test_listener_survives_a_broken_connection_with_the_same_fd(url: str) -> None:
    runner_store = open_store(url)
    listener = runner_store.listener("r1")
    assert listener is not None
    fd = listener.fileno()
    client = open_store(url)
    try:
        (pid,) = admin(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND query LIKE %s",
            url.rsplit("/", 1)[1],
            "%LISTEN%",
        )[0]
        terminate(pid)
        # It listens again, and wakes the runner, since notifications meanwhile were lost.
        assert readable(listener, 10), "no wakeup after reconnecting"
        listener.drain()
        client.enqueue_many([new_job({"command": "true"})])
        assert readable(listener, 5), "no wakeup after the reconnect"
        assert listener.fileno() == fd
    finally:
        listener.close()
        client.close()
        runner_store.close()


def test_a_terminated_backend_is_survived_by_the_next_call(store: Any) -> None:
    store.enqueue_many([new_job({"command": "true", "id": "a"})])
    for call in (
        lambda: store.get("a"),
        lambda: store.finish_and_claim("r1", [], 1, None, 30),
        lambda: store.enqueue_many([new_job({"command": "true", "id": "b"})]),
        lambda: store.counts(),
    ):
        terminate(store.db.connection().info.backend_pid)
        call()
    assert store.get("a").state == "processing"
    assert store.get("b") is not None


class Proxy:
    """A TCP forwarder to the server that can be cut and restored: a PostgreSQL outage."""

    def __init__(self, port: int) -> None:
        self.target = ("127.0.0.1", port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.sockets: list[socket.socket] = []
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped:
            with contextlib.suppress(OSError):
                client, _ = self.server.accept()
                if not self.up.is_set():
                    client.close()
                    continue
                upstream = socket.create_connection(self.target)
                self.sockets += [client, upstream]
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def cut(self) -> None:
        self.up.clear()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.stopped = True
        self.cut()
        self.server.close()


def test_a_runner_call_waits_out_a_blip_and_gives_up_soon_on_an_outage(url: str) -> None:
    from psycopg.conninfo import conninfo_to_dict

    from queuectl.store.dialect import RUNNER_PATIENCE_S

    port = int(conninfo_to_dict(url).get("port") or 5432)
    proxy = Proxy(port)
    proxied = url.replace(f":{port}/", f":{proxy.port}/")
    store = open_store(proxied, FakeClock())
    try:
        store.enqueue_many([new_job({"command": "true", "id": "a"})])
        proxy.cut()
        threading.Timer(RUNNER_PATIENCE_S / 2, proxy.up.set).start()
        started = time.monotonic()
        claims = store.finish_and_claim("r1", [], 1, None, 30).claims
        assert [c.id for c in claims] == ["a"]
        assert time.monotonic() - started >= RUNNER_PATIENCE_S / 4
        # a longer outage: the runner gets the error soon, so its loop goes on killing and
        # collecting its jobs, and it tries again on its next turn
        proxy.cut()
        started = time.monotonic()
        with pytest.raises(StoreError):
            store.heartbeat("r1", 30)
        assert time.monotonic() - started < RUNNER_PATIENCE_S + 5
        # a client call does not wait: one reconnect, then a one-line error
        with pytest.raises(
            StoreError, match=r"^cannot connect to PostgreSQL at 127\.0\.0\.1:\d+ \("
        ):
            store.get("a")
    finally:
        store.close()
        proxy.close()


def test_outcome_settled_across_a_reconnect_is_fenced(store: Any) -> None:
    store.enqueue_many([new_job({"command": "true", "id": "a"})])
    (claim,) = store.finish_and_claim("r1", [], 1, None, 30).claims
    done = Outcome("a", claim.attempt, 0, None, 0, token=claim.token)
    settled = store.finish_and_claim("r1", [done], 0, None, 30).settled
    terminate(store.db.connection().info.backend_pid)
    again = store.finish_and_claim("r1", [done], 0, None, 30).settled
    assert (settled["a"].state, again) == ("completed", {})


def test_unreachable_server_is_a_one_line_store_error() -> None:
    with pytest.raises(StoreError) as refused:
        open_store("postgresql://postgres@127.0.0.1:1/queuectl")
    assert str(refused.value) == "cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused)"
    with pytest.raises(StoreError) as unknown:
        open_store("postgresql://postgres@no-such-host.invalid:5432/queuectl")
    assert str(unknown.value) == (
        "cannot connect to PostgreSQL at no-such-host.invalid:5432 (unknown host)"
    )


def test_missing_database_is_named(url: str) -> None:
    gone = url + "_missing"
    with pytest.raises(StoreError, match=r'database "queuectl_test_\w+_missing" does not exist'):
        open_store(gone)


def test_cli_reports_a_refused_connection_on_one_line() -> None:
    result = run_cli("postgresql://postgres@127.0.0.1:1/queuectl", "list")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: cannot connect to PostgreSQL at 127.0.0.1:1 (connection refused)"
    ]


def test_concurrent_first_use_migrates_once() -> None:
    script = "import sys; from queuectl.store import open_store; print(open_store(sys.argv[1]).migrate())"
    with empty_database() as url:
        openers = [
            subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, text=True)
            for _ in range(5)
        ]
        assert [o.communicate(timeout=60)[0].strip() for o in openers] == [str(NEWEST)] * 5
        versions = admin_db(url, "SELECT version FROM queuectl_schema ORDER BY version")
        assert versions == [(number,) for number, _, _ in migrations("postgres")]


def admin_db(url: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query).fetchall()


def test_a_newer_schema_is_refused(url: str) -> None:
    admin_db(
        url, "INSERT INTO queuectl_schema (version, name) VALUES (99, '0099_future') RETURNING 1"
    )
    with pytest.raises(StoreError, match="newer queuectl"):
        open_store(url)


def test_real_time_comes_from_the_database_clock(url: str) -> None:
    store = open_store(url)
    try:
        (server_ms,) = admin("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")[0]
        assert abs(store.clock.now_ms() - server_ms) < 1000
        (job,) = store.enqueue_many([new_job({"command": "true"})])
        assert abs(job.created_at_ms - server_ms) < 1000
        readings = [store.clock.now_ms() for _ in range(1000)]
        assert readings == sorted(readings)
    finally:
        store.close()


def test_output_is_bytes_and_describe_hides_the_password(store: Any) -> None:
    store.enqueue_many([new_job({"command": "true", "id": "a"})])
    store.finish_and_claim("r1", [], 1, None, 30)
    store.save_output("r1", "a", 1, bytes(range(256)))
    assert store.output("a").data == bytes(range(256))
    described = store.describe()
    assert (described["kind"], described["schema_version"]) == ("postgres", NEWEST)
    from queuectl.urls import redact_url

    assert redact_url("postgresql://u:secret@h:5/db") == "postgresql://u:***@h:5/db"
    assert (
        redact_url("postgresql://h/db?password=secret&x=1") == "postgresql://h/db?password=***&x=1"
    )


def test_the_cli_does_not_load_psycopg_for_sqlite(tmp_path: Any) -> None:
    code = (
        "import sys; from queuectl import Queue; Queue(sys.argv[1]).enqueue('true'); "
        "print('psycopg' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "q.db")], capture_output=True, text=True
    )
    assert result.stdout.strip() == "False", result.stderr


def test_a_bulk_enqueue_sends_one_notification(store: Any, url: str, tmp_path: Any) -> None:
    """However many jobs and batches, one NOTIFY per enqueue: counted in the protocol the store
    sends (PostgreSQL folds identical notifications of one transaction into one, so a listener
    alone could not tell one NOTIFY from thousands)."""
    listener = psycopg.connect(url, autocommit=True)
    listener.execute("LISTEN queuectl_wakeup")
    trace = tmp_path / "trace"
    conn = store.db.connection()
    conn.prepare_threshold = None  # each statement's text in the trace, none prepared by name
    with trace.open("w") as sink:
        conn.pgconn.trace(sink.fileno())
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            store.enqueue_many([new_job({"command": "true"}) for _ in range(3000)])
            store.enqueue_batches(
                [
                    [(f"line {b}-{n}", new_job({"command": "true"})) for n in range(300)]
                    for b in range(10)
                ],
                lambda jobs: None,
            )
        finally:
            conn.pgconn.untrace()
    sent = trace.read_text()
    assert sent.count("NOTIFY queuectl_wakeup") == 2, "one for each enqueue"
    assert store.counts() == {"default": {"pending": 6000}}
    heard = list(listener.notifies(timeout=1, stop_after=10))
    listener.close()
    assert len(heard) == 2
