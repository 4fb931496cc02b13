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
