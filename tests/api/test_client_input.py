"""No 5xx from client input: cursors that no store key can be are 422 on both backends."""

from __future__ import annotations

import pytest

from queuectl import Queue


@pytest.mark.parametrize("cursor", ["%C2%B2", "99999999999999999999999", "-1", "1e3"])
def test_a_malformed_cursor_is_422(client, queue: Queue, cursor: str) -> None:
    queue.enqueue("true")
    response = client.get(f"/api/jobs?limit=1&cursor={cursor}")
    assert response.status_code == 422, response.text
    assert response.json()["error"].startswith("cursor: ")


def test_a_unique_key_over_the_limit_is_422(client) -> None:
    response = client.post("/api/jobs", json={"command": "true", "unique_key": "\U0001f600" * 1024})
    assert response.status_code == 422, response.text
    assert "unique_key" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "path", "body", "said"),
    [
        ("POST", "/api/jobs", b"{nope", "the body is not valid JSON ("),
        ("GET", "/api/jobs?limit=abc", None, "limit: expected a whole number, got 'abc'"),
        ("GET", "/api/jobs/x/output?attempt=two", None, "attempt: expected a whole number"),
    ],
)
def test_validation_errors_are_in_plain_words(
    client, method: str, path: str, body: bytes | None, said: str
) -> None:
    headers = {"content-type": "application/json"} if body is not None else {}
    response = client.request(method, path, content=body, headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error.startswith(said)
    for word in ("Input should", "decode", "query.", "body.", "JSON decode"):
        assert word not in error


#: A job nested deeper than JSON's parser can recurse.
DEEP_ENV = "[" * 50_000 + "]" * 50_000


def _unchanged(queue: Queue) -> None:
    assert queue.list() == []
    assert queue.schedules() == []
    assert queue.hooks() == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/jobs", '{"command": "true", "env": %s}'),
        ("/api/jobs", '[{"command": "true"}, {"command": "true", "env": %s}]'),
        ("/api/schedules", '{"name": "s", "every": "1m", "job": {"command": "x", "env": %s}}'),
        ("/api/hooks", '{"name": "h", "on": "completed", "job": {"command": "x", "env": %s}}'),
        ("/api/queues/q", '{"concurrency": %s}'),
        ("/api/config/max_retries", '{"value": %s}'),
    ],
)
def test_json_nested_too_deeply_is_422(client, queue: Queue, path: str, body: str) -> None:
    method = "PUT" if path.startswith(("/api/queues", "/api/config")) else "POST"
    response = client.request(
        method, path, content=body % DEEP_ENV, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json() == {"error": "the body is not valid JSON (nested too deeply)"}
    _unchanged(queue)
    assert queue.config()["max_retries"] == 3


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_cron_date_that_never_comes_is_422(client, queue: Queue, cron: str) -> None:
    for tz in (None, "Europe/Paris"):
        body = {"name": "s", "cron": cron, "tz": tz, "job": {"command": "x"}}
        response = client.post("/api/schedules", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["error"] == (
            f"--cron: {cron!r} matches no date that ever comes (such as February 30)"
        )
    _unchanged(queue)
