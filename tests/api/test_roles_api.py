"""Tokens with roles on the HTTP API (read, operate, admin; 401 and 403), /api/whoami, and the
audit of every mutating request, on both stores."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from queuectl import Queue
from tests.api.conftest import AUTH, TEST_TOKEN, run_once

#: (method, path, body, the least role it needs): every route of the API.
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/jobs", None, "read"),
    ("GET", "/api/jobs?search=x", None, "read"),
    ("GET", "/api/jobs/{job}", None, "read"),
    ("GET", "/api/jobs/{job}/output", None, "read"),
    ("GET", "/api/dlq", None, "read"),
    ("GET", "/api/status", None, "read"),
    ("GET", "/api/stats/throughput", None, "read"),
    ("GET", "/api/config", None, "read"),
    ("GET", "/api/queues", None, "read"),
    ("GET", "/api/schedules", None, "read"),
    ("GET", "/api/hooks", None, "read"),
    ("GET", "/api/whoami", None, "read"),
    ("GET", "/api/audit", None, "read"),
    ("GET", "/metrics", None, "read"),
    ("POST", "/api/jobs/{job}/cancel", None, "operate"),
    ("POST", "/api/jobs/{dead}/retry", None, "operate"),
    ("POST", "/api/jobs/bulk", {"filter": {"state": ["dead"]}, "action": "retry"}, "operate"),
    ("POST", "/api/jobs/bulk", {"filter": {"queue": ["q"]}, "action": "cancel"}, "operate"),
    ("POST", "/api/dlq/retry", {"all": True}, "operate"),
    ("POST", "/api/queues/q/pause", None, "operate"),
    ("POST", "/api/queues/q/resume", None, "operate"),
    ("POST", "/api/jobs", {"command": "true"}, "admin"),
    ("POST", "/api/jobs/bulk", {"filter": {"state": ["dead"]}, "action": "delete"}, "admin"),
    ("DELETE", "/api/dlq", None, "admin"),
    ("PUT", "/api/config/max_retries", {"value": 2}, "admin"),
    ("PUT", "/api/queues/q", {"concurrency": 2}, "admin"),
    ("POST", "/api/schedules", {"name": "s", "every": "1h", "job": {"command": "true"}}, "admin"),
    ("DELETE", "/api/schedules/s", None, "admin"),
    ("POST", "/api/hooks", {"name": "h", "on": "dead", "job": {"command": "true"}}, "admin"),
    ("DELETE", "/api/hooks/h", None, "admin"),
]
ROLES = ["read", "operate", "admin"]


@pytest.fixture
def tokens(queue: Queue) -> dict[str, str]:
    return {role: queue.add_token(f"t-{role}", role) for role in ROLES}


def call(client: Any, method: str, path: str, body: Any, token: str) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    return client.request(method, path, json=body, headers=headers)


def fresh_jobs(queue: Queue, n: int) -> dict[str, str]:
    return {
        "dead": run_once(queue, "false", 1, queue=f"dead-{n}"),
        "job": queue.enqueue("sleep 100", queue="q").id,
    }


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_use_the_routes_of_its_role_and_below(
    role: str, make_client: Callable[..., Any], queue: Queue, tokens: dict[str, str]
) -> None:
    client = make_client(token=TEST_TOKEN)
    for n, (method, path, body, needs) in enumerate(ROUTES):
        ids = fresh_jobs(queue, n)
        got = call(client, method, path.format(**ids), body, tokens[role])
        allowed = ROLES.index(role) >= ROLES.index(needs)
        where = f"{method} {path} as {role}"
        if allowed:
            assert got.status_code < 400, f"{where}: {got.status_code} {got.text}"
        else:
            assert got.status_code == 403, f"{where}: {got.status_code} {got.text}"
            assert "may not do this: it needs the" in got.json()["error"]


def test_whoami_names_the_token_and_the_serve_token_is_admin(
    make_client: Callable[..., Any], tokens: dict[str, str]
) -> None:
    client = make_client(token=TEST_TOKEN)
    got = call(client, "GET", "/api/whoami", None, tokens["operate"])
    assert got.json() == {"name": "t-operate", "role": "operate"}
    got = call(client, "GET", "/api/whoami", None, TEST_TOKEN)
    assert got.json() == {"name": "(serve)", "role": "admin"}


def test_unknown_and_revoked_tokens_are_401(
    make_client: Callable[..., Any], queue: Queue, tokens: dict[str, str]
) -> None:
    client = make_client(token=TEST_TOKEN)
    assert call(client, "GET", "/api/status", None, "qct_not-a-token").status_code == 401
    assert call(client, "GET", "/api/status", None, tokens["read"]).status_code == 200
    queue.revoke_token("t-read")
    deadline = time.monotonic() + 5  # a server believes a token it looked up for seconds
    while call(client, "GET", "/api/status", None, tokens["read"]).status_code == 200:
        assert time.monotonic() < deadline, "a revoked token still works"
        time.sleep(0.2)
    assert call(client, "GET", "/api/status", None, tokens["read"]).status_code == 401


def test_tokens_are_stored_hashed(queue: Queue, tokens: dict[str, str], target: str) -> None:
    # Nothing the store holds is the token: look in every column of the tokens table.
    store = queue._store
    rows = store.db.connection().execute("SELECT * FROM api_tokens").fetchall()  # type: ignore[attr-defined]
    stored = " ".join(str(value) for row in rows for value in dict(row).values())
    for secret in tokens.values():
        assert secret not in stored
    assert [t.name for t in queue.tokens()] == ["t-admin", "t-operate", "t-read"]


def test_every_mutating_request_is_audited(
    make_client: Callable[..., Any], queue: Queue, tokens: dict[str, str]
) -> None:
    client = make_client(token=TEST_TOKEN)
    dead = run_once(queue, "false", 1, queue="dead-q")
    made = call(client, "POST", "/api/jobs", {"command": "true", "id": "j1"}, tokens["admin"])
    assert made.status_code == 201
    call(client, "POST", "/api/jobs/j1/cancel", None, tokens["operate"])
    refused = call(client, "POST", "/api/jobs", {"command": "true"}, tokens["read"])
    assert refused.status_code == 403
    call(
        client,
        "POST",
        "/api/jobs/bulk",
        {"filter": {"state": ["dead"]}, "action": "retry"},
        tokens["operate"],
    )
    call(client, "GET", "/api/status", None, tokens["admin"])  # a read: not recorded
    entries = queue.audit()
    seen = [(e.token, e.method, e.route, e.target, e.status) for e in reversed(entries)]
    assert seen == [
        ("t-admin", "POST", "/api/jobs", "j1", 201),
        ("t-operate", "POST", "/api/jobs/{job_id}/cancel", "j1", 200),
        ("t-read", "POST", "/api/jobs", "", 403),
        (
            "t-operate",
            "POST",
            "/api/jobs/bulk",
            '{"filter":{"state":["dead"]},"action":"retry"} -> {"matched": 1, "changed": 1}',
            200,
        ),
    ]
    assert {e.client for e in entries} == {"testclient"}
    assert queue.get(dead).state == "pending"
    listed = call(client, "GET", "/api/audit?since=1h", None, tokens["read"]).json()
    assert listed[0]["route"] == "/api/jobs/bulk"
    assert listed[0]["token"] == "t-operate"


def test_audit_retention(queue: Queue, cli: Callable[..., Any]) -> None:
    from queuectl.store import AuditEntry

    now = queue.now_ms()
    old = AuditEntry(now - 91 * 86_400_000, "t", "c", "POST", "/api/jobs", "a", 201)
    new = AuditEntry(now - 1000, "t", "c", "POST", "/api/jobs", "b", 201)
    queue.record_audit(old)
    queue.record_audit(new)
    done = cli("audit", "--expire")
    assert done.returncode == 0, done.stderr
    assert "deleted 1 audit entry" in done.stderr
    assert [e.target for e in queue.audit()] == ["b"]
    listed = cli("audit", "--json")
    assert '"target": "b"' in listed.stdout


def test_token_commands(cli: Callable[..., Any], queue: Queue) -> None:
    made = cli("token", "add", "ci-bot", "--role", "operate")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("qct_")
    assert queue.token_role(secret) == ("ci-bot", "operate")
    again = cli("token", "add", "ci-bot", "--role", "read")
    assert again.returncode == 1
    assert "exists" in again.stderr
    listed = cli("token", "list")
    assert "ci-bot" in listed.stdout
    assert secret not in listed.stdout
    assert cli("token", "revoke", "ci-bot").returncode == 0
    assert queue.token_role(secret) is None
    gone = cli("token", "revoke", "ci-bot")
    assert gone.returncode == 1
    assert "no token 'ci-bot'" in gone.stderr
    assert AUTH  # the test token of the other API tests stays an admin token
