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


def test_patch_sets_and_clears_a_jobs_limits(client: Any, queue: Queue) -> None:
    job = queue.enqueue("true", queue="nowhere", cpus=2)
    answer = client.patch(f"/api/jobs/{job.id}", json={"memory": "256M", "max_procs": 20})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["memory"], body["cpus"], body["max_procs"]) == (256 << 20, 2, 20)
    answer = client.patch(f"/api/jobs/{job.id}", json={"memory": None, "cpus": None})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["memory"], answer.json()["cpus"]) == (None, None)
    for bad in ({"cpus": 0}, {"memory": "much"}, {"max_procs": 0}):
        assert client.patch(f"/api/jobs/{job.id}", json=bad).status_code == 422, bad
    got = queue.get(job.id)
    assert (got.memory, got.cpus, got.max_procs) == (None, None, 20)
