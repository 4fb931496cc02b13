"""PATCH /api/jobs/{id}: an edit of a waiting job, noted as made by the API; on both stores."""

from __future__ import annotations

from typing import Any

from queuectl import Queue


def test_patch_edits_a_waiting_job_and_refuses_a_finished_one(client: Any, queue: Queue) -> None:
    job = queue.enqueue("echo old", queue="nowhere")
    answer = client.patch(f"/api/jobs/{job.id}", json={"command": "echo new", "priority": 3})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["command"], body["priority"]) == ("echo new", 3)
    assert [(e["by"], e["fields"]) for e in body["edits"]] == [("api", ["command", "priority"])]
    assert client.patch(f"/api/jobs/{job.id}", json={"priority": "x"}).status_code == 422
    assert client.patch(f"/api/jobs/{job.id}", json={"state": "dead"}).status_code == 422
    assert client.patch(f"/api/jobs/{job.id}", json=[1]).status_code == 422
    assert client.patch("/api/jobs/nope", json={"priority": 1}).status_code == 404
    queue.cancel(job.id)
    answer = client.patch(f"/api/jobs/{job.id}", json={"priority": 1})
    assert answer.status_code == 409, answer.text
    assert queue.get(job.id).priority == 3
