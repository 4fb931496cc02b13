"""Roles, tokens, the audit and bulk actions attacked over HTTP: a token below a route's role
changes nothing on any mutating route (taken from the app's own schema, so a route added later
is attacked too), every such request is audited, tokens are never stored, a revoked token
stops, and a bulk filter cannot be made to match every job without `all: true`."""

from __future__ import annotations

import hashlib
import subprocess
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.api.app import create_app
from queuectl.errors import InvalidInputError
from tests.support import fake_runner
from tests.support.cli import assert_clean_error
from tests.support.runners import wait_until

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with", category=UserWarning)
    from fastapi.testclient import TestClient

Cli = Callable[..., subprocess.CompletedProcess[str]]
SERVE_TOKEN = "hostile-serve-token-0123456789"
SAFE = {"GET", "HEAD", "OPTIONS"}
#: A body each mutating route would accept, so that a refusal is the role's, not the body's.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/api/jobs"): {"command": "echo intruder"},
    ("PATCH", "/api/jobs/{job_id}"): {"priority": 9},
    ("POST", "/api/jobs/bulk"): {"filter": {"queue": ["rq"]}, "action": "cancel"},
    ("POST", "/api/dlq/retry"): {"all": True},
    ("PUT", "/api/config/{key}"): {"value": 7},
    ("PUT", "/api/queues/{name}"): {"concurrency": 1},
    ("POST", "/api/schedules"): {"name": "intruder", "every": "1h", "job": {"command": "true"}},
    ("POST", "/api/hooks"): {"name": "intruder", "on": "completed", "job": {"command": "true"}},
}
PARAMS = {"job_id": "rj", "name": "rq", "key": "max_retries"}
#: The writes an operate token may make; every other write needs admin.
OPERATE = {
    ("POST", "/api/jobs/{job_id}/cancel"),
    ("POST", "/api/jobs/{job_id}/retry"),
    ("POST", "/api/jobs/{job_id}/hold"),
    ("POST", "/api/jobs/{job_id}/release"),
    ("POST", "/api/jobs/bulk"),
    ("POST", "/api/dlq/retry"),
    ("POST", "/api/queues/{name}/pause"),
    ("POST", "/api/queues/{name}/resume"),
    ("POST", "/api/batches/{name}/cancel"),
}


@pytest.fixture
def app_client(target: str) -> Iterator[TestClient]:
    client = TestClient(create_app(target, SERVE_TOKEN), base_url="http://127.0.0.1:8765")
    with client:
        yield client


def mutating_routes(client: TestClient) -> list[tuple[str, str]]:
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return sorted(
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        for method in operations
        if method.upper() not in SAFE
    )


def world(queue: Queue) -> dict[str, Any]:
    """Everything a write could change, as readers see it."""
    return {
        "jobs": {j.id: queue.detail(j.id) for j in queue.list()},
        "queues": queue.queues(),
        "config": queue.config(),
        "hooks": [h.name for h in queue.hooks()],
        "schedules": [s.name for s in queue.schedules()],
        "tokens": [(t.name, t.role) for t in queue.tokens()],
    }


def seed(queue: Queue) -> None:
    queue.enqueue("true", id="rj", queue="rq", batch="rq")
    queue.enqueue("true", id="rdead", queue="rq2", max_retries=0)
    fake_runner.run(queue._store, "rdead", 1)
    queue.add_hook("rh", "completed", {"command": "true"})
    queue.add_schedule("rs", {"command": "true"}, every="1h")


def call(client: TestClient, method: str, path: str, token: str) -> Any:
    body = BODIES.get((method, path))
    url = path.format(**PARAMS)
    headers = {"Authorization": f"Bearer {token}"}
    return client.request(method, url, headers=headers, json=body)


def test_tokens_below_a_routes_role_get_403_and_change_nothing(
    app_client: TestClient, queue: Queue
) -> None:
    seed(queue)
    reader, operator = queue.add_token("reader", "read"), queue.add_token("oper", "operate")
    routes = mutating_routes(app_client)
    assert len(routes) >= len(BODIES) + len(OPERATE) - 2, routes
    before = world(queue)
    refused = []
    for method, path in routes:
        answer = call(app_client, method, path, reader)
        assert answer.status_code == 403, (method, path, answer.text)
        assert "read" in answer.json()["error"]
        refused.append(("reader", method, path))
        if (method, path) not in OPERATE:
            answer = call(app_client, method, path, operator)
            assert answer.status_code == 403, (method, path, answer.text)
            refused.append(("oper", method, path))
    delete_all = {"filter": {"queue": ["rq", "rq2"]}, "action": "delete"}
    answer = app_client.post(
        "/api/jobs/bulk", json=delete_all, headers={"Authorization": f"Bearer {operator}"}
    )
    assert answer.status_code == 403, answer.text
    refused.append(("oper", "POST", "/api/jobs/bulk"))
    assert world(queue) == before
    audited = [(e.token, e.method, e.route, e.status) for e in queue.audit()]
    assert sorted(audited) == sorted((who, m, p, 403) for who, m, p in refused)
    # a dry run of any action is the operate role's
    answer = app_client.post(
        "/api/jobs/bulk",
        json={**delete_all, "dry_run": True},
        headers={"Authorization": f"Bearer {operator}"},
    )
    assert answer.json() == {"matched": 2}
    assert world(queue) == before


def test_tokens_are_stored_hashed_and_a_revoked_one_stops(
    app_client: TestClient, queue: Queue, cli: Cli, target: str
) -> None:
    result = cli("token", "add", "oncall", "--role", "operate")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert len(secret) >= 32
    assert [(t.name, t.role) for t in queue.tokens()] == [("oncall", "operate")]
    headers = {"Authorization": f"Bearer {secret}"}
    assert app_client.get("/api/whoami", headers=headers).json() == {
        "name": "oncall",
        "role": "operate",
    }
    assert app_client.post("/api/queues/x/pause", headers=headers).status_code == 200
    digest = hashlib.sha256(secret.encode()).hexdigest()
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            rows = conn.execute("SELECT * FROM api_tokens").fetchall()
            audit = conn.execute("SELECT * FROM audit").fetchall()
        stored = repr(rows) + repr(audit)
        assert digest in stored
        assert secret not in stored
    else:
        stored_bytes = b"".join(p.read_bytes() for p in Path(target).parent.glob("queue.db*"))
        assert digest.encode() in stored_bytes
        assert secret.encode() not in stored_bytes
    assert cli("token", "revoke", "oncall").returncode == 0
    wait_until(
        lambda: app_client.get("/api/whoami", headers=headers).status_code == 401,
        10,
        "the revoked token to be refused",
    )
    assert app_client.post("/api/queues/x/resume", headers=headers).status_code == 401
    again = cli("token", "add", "oncall", "--role", "admin")
    assert again.returncode == 0
    assert app_client.get("/api/whoami", headers=headers).status_code == 401
    assert_clean_error(cli("token", "revoke", "nosuch"), 1, "nosuch")


def test_a_bulk_search_with_a_nul_is_refused_and_changes_nothing(
    app_client: TestClient, queue: Queue
) -> None:
    """On SQLite a LIKE pattern ends at a NUL byte: a search of "\\0" matched every job, and a
    bulk cancel or delete acted on all of them without `all: true`."""
    for n in range(3):
        queue.enqueue(f"echo {n}", queue="bulkq")
    before = world(queue)
    headers = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    for action in ("cancel", "delete", "retry"):
        for search in ("\x00", "zz\x00", "\x00%"):
            for dry_run in (True, False):
                body = {"filter": {"search": search}, "action": action, "dry_run": dry_run}
                answer = app_client.post("/api/jobs/bulk", json=body, headers=headers)
                assert answer.status_code == 422, (body, answer.text)
                assert "NUL" in answer.json()["error"]
    assert world(queue) == before
    body = {"filter": {"state": ["pending"]}, "action": "cancel", "dry_run": True}
    assert app_client.post("/api/jobs/bulk", json=body, headers=headers).json() == {"matched": 3}


@pytest.mark.backends("sqlite")
def test_queue_bulk_with_a_nul_search_acts_on_no_job(queue: Queue) -> None:
    for n in range(3):
        queue.enqueue(f"echo {n}")
    try:
        done = queue.bulk("cancel", search="\x00")
    except InvalidInputError:  # refused is as good as matching nothing
        done = {"matched": 0, "changed": 0}
    assert done == {"matched": 0, "changed": 0}
    assert {j.state for j in queue.list()} == {"pending"}


@pytest.mark.backends("sqlite")
def test_bulk_filters_by_batch_and_holds_and_releases(app_client: TestClient, queue: Queue) -> None:
    queue.enqueue_array("1-3", {"id": "bb", "command": "true", "queue": "bbq"})
    other = queue.enqueue("true", queue="bbq").id
    headers = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    body: dict[str, Any] = {"filter": {"batch": "bb"}, "action": "hold"}
    answer = app_client.post("/api/jobs/bulk", json=body, headers=headers)
    assert answer.json() == {"matched": 3, "changed": 3}, answer.text
    assert all(j.held for j in queue.list(batch="bb"))
    assert not queue.get(other).held
    body["action"] = "release"
    assert app_client.post("/api/jobs/bulk", json=body, headers=headers).json()["changed"] == 3


@pytest.mark.backends("sqlite")  # refused before the store is read
def test_audit_and_bulk_refuse_out_of_range_numbers_in_one_line(
    cli: Cli, app_client: TestClient
) -> None:
    for limit in ("0", "-1"):
        assert_clean_error(cli("audit", "--limit", limit), 2, "limit")
    everything = cli("audit", "--limit", "99999999999999999999", "--json")
    assert everything.returncode == 0, everything.stderr
    assert everything.stdout.strip() == "[]"
    headers = {"Authorization": f"Bearer {SERVE_TOKEN}"}
    for query in ("limit=0", "limit=99999999999999999999", "since=1e400", "since=%00"):
        assert app_client.get(f"/api/audit?{query}", headers=headers).status_code == 422, query
