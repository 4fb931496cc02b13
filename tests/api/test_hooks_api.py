"""Hooks and recent counts over HTTP (SPEC 9.9, 9.10): /api/hooks and /api/status?since=."""

from __future__ import annotations

from queuectl import Queue
from tests.api.conftest import run_once


def test_hooks_add_list_and_remove(client, queue: Queue) -> None:
    response = client.post(
        "/api/hooks",
        json={"name": "page", "on": ["dead"], "queue": "nightly", "job": {"command": "notify"}},
    )
    assert response.status_code == 201
    added = response.json()
    assert (added["name"], added["on"], added["queue"]) == ("page", ["dead"], "nightly")
    assert added["job"]["command"] == "notify"
    client.post(
        "/api/hooks", json={"name": "all", "on": "completed,cancelled", "job": {"command": "x"}}
    )
    listed = client.get("/api/hooks").json()
    assert [(h["name"], h["on"], h["queue"]) for h in listed] == [
        ("all", ["completed", "cancelled"], None),
        ("page", ["dead"], "nightly"),
    ]
    run_once(queue, "exit 1", 1, queue="nightly")
    assert [job.made_by for job in queue.list() if job.made_by] == [
        f"hook page: dead of {queue.list(state='dead')[0].id}"
    ]
    # The API marks the hook job (its hook's name, and what made it); other jobs carry neither.
    dead_id = queue.list(state="dead")[0].id
    listed_jobs = client.get("/api/jobs").json()["jobs"]
    marked = [(j.get("hook"), j.get("made_by")) for j in listed_jobs]
    assert marked.count(("page", f"hook page: dead of {dead_id}")) == 1
    assert marked.count((None, None)) == len(listed_jobs) - 1
    made = next(j for j in listed_jobs if j.get("hook"))
    assert client.get(f"/api/jobs/{made['id']}").json()["hook"] == "page"
    assert client.delete("/api/hooks/page").json() == {"removed": "page"}
    assert [h.name for h in queue.hooks()] == ["all"]
    assert client.delete("/api/hooks/page").status_code == 404


def test_hook_errors(client, queue: Queue) -> None:
    for body in (
        {"name": "x", "on": ["finished"], "job": {"command": "true"}},
        {"name": "x", "on": [], "job": {"command": "true"}},
        {"name": "x", "on": ["dead"], "job": {"command": ""}},
        {"name": "x", "on": ["dead"], "job": {"command": "true", "id": "fixed"}},
        {"name": "bad name", "on": ["dead"], "job": {"command": "true"}},
        {"name": "x", "on": ["dead"]},
        {"name": "x", "on": ["dead"], "job": {"command": "true"}, "extra": 1},
    ):
        response = client.post("/api/hooks", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]
    assert queue.hooks() == []


def test_status_since_counts_the_finished_jobs(client, queue: Queue) -> None:
    run_once(queue, "true", 0)
    run_once(queue, "false", 1)
    queue.enqueue("true", id="c")
    queue.cancel("c")
    plain = client.get("/api/status").json()
    assert "since" not in plain
    response = client.get("/api/status", params={"since": "10m"})
    assert '"seconds":600,' in response.text  # whole seconds as an integer, as the CLI has it
    since = response.json()["since"]
    assert since == {"seconds": 600, "completed": 1, "dead": 1, "cancelled": 1, "cpu_seconds": 0.0}
    assert client.get("/api/status", params={"since": "soon"}).status_code == 422
