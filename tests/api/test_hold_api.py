"""POST /api/jobs/{id}/hold and /release, and GET /api/jobs?held=true, on both stores."""

from __future__ import annotations

from typing import Any

from queuectl import Queue


def test_hold_and_release_over_http(client: Any, queue: Queue) -> None:
    job = queue.enqueue("true")
    answer = client.post(f"/api/jobs/{job.id}/hold")
    assert answer.status_code == 200, answer.text
    assert answer.json()["held"] is True
    listed = client.get("/api/jobs", params={"held": "true"}).json()["jobs"]
    assert [j["id"] for j in listed] == [job.id]
    answer = client.post(f"/api/jobs/{job.id}/release")
    assert (answer.status_code, answer.json()["held"]) == (200, False)
    assert client.get("/api/jobs", params={"held": "true"}).json()["jobs"] == []
    queue.cancel(job.id)
    answer = client.post(f"/api/jobs/{job.id}/hold")
    assert answer.status_code == 409, answer.text
    assert "cannot be held" in answer.text
    assert client.post("/api/jobs/nope/hold").status_code == 404
