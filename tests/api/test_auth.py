"""The token rules, and the loopback server's defences against other web pages in the browser."""

from __future__ import annotations

import pytest

from queuectl import Queue
from queuectl.api.app import is_loopback

TOKEN = "s3cret-token"


def api_routes(client) -> list[tuple[str, str]]:
    """(method, concrete path) of every guarded route (/api but /api/health, and /metrics),
    from the OpenAPI description."""
    found = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        if path.startswith(("/api", "/metrics")) and path != "/api/health":
            concrete = (
                path.replace("{job_id}", "j1")
                .replace("{name}", "q1")
                .replace("{key}", "max_retries")
            )
            found += [(method.upper(), concrete) for method in operations]
    return found


def test_health_is_open_without_the_token(make_client) -> None:
    client = make_client(TOKEN)
    assert client.get("/api/health").status_code == 200


def test_with_a_token_every_api_route_and_metrics_need_it(make_client, queue: Queue) -> None:
    client = make_client(TOKEN)
    routes = api_routes(client)
    assert len(routes) >= 20
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            response = client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, headers)
            assert response.json() == {"error": "a valid bearer token is required"}
            assert response.headers["www-authenticate"] == "Bearer"
    assert queue.list() == []
    assert queue.queues() == {}


def test_with_the_token_the_api_answers(make_client) -> None:
    client = make_client(TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/status", headers=auth).status_code == 200
    assert client.post("/api/jobs", json={"command": "true"}, headers=auth).status_code == 201
    assert client.get("/metrics", headers=auth).status_code == 200


def test_the_dashboard_and_the_docs_load_without_the_token(make_client) -> None:
    client = make_client(TOKEN)
    for path in ("/", "/static/app.js", "/static/style.css", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 200, path
    assert TOKEN not in client.get("/").text


def test_a_rebound_host_name_gets_nothing_without_the_token(make_client) -> None:
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 is same-origin with us, but
    # it does not know the token.
    client = make_client(TOKEN)
    response = client.get("/api/status", headers={"Host": "evil.example:8765"})
    assert response.status_code == 401


def test_a_server_with_a_token_accepts_any_host_name(make_client) -> None:
    client = make_client(TOKEN)
    headers = {"Host": "queue.example.com", "Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/status", headers=headers).status_code == 200


def test_cross_origin_writes_are_refused(client, queue: Queue) -> None:
    # Cross-site request forgery: another page posting to the loopback server.
    for origin in ("http://evil.example", "null", "http://127.0.0.1:9999"):
        response = client.post(
            "/api/jobs", json={"command": "touch /tmp/pwned"}, headers={"Origin": origin}
        )
        assert response.status_code == 403, origin
    assert queue.list() == []
    same = client.post(
        "/api/jobs", json={"command": "true"}, headers={"Origin": "http://127.0.0.1:8765"}
    )
    assert same.status_code == 201


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
