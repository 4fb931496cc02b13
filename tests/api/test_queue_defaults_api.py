"""PUT /api/queues/{name} with timeout and max_retries: a queue's defaults for its jobs."""

from __future__ import annotations

from typing import Any


def test_put_sets_and_clears_a_queues_defaults(client: Any) -> None:
    answer = client.put("/api/queues/night", json={"timeout": "5m", "max_retries": 1})
    assert answer.status_code == 200, answer.text
    assert answer.json()["defaults"] == {"timeout": 300.0, "max_retries": 1}
    answer = client.put("/api/queues/night", json={"concurrency": 2, "timeout": None})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["concurrency"], answer.json()["defaults"]) == (
        2,
        {"timeout": None, "max_retries": 1},
    )
    assert client.put("/api/queues/night", json={"max_retries": "many"}).status_code == 422
    answer = client.put("/api/queues/night", json={"max_retries": None})
    assert "defaults" not in answer.json()
    assert "defaults" not in client.get("/api/queues").json()["night"]
