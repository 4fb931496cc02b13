"""Batches over HTTP on both stores: enqueue with batch and conditions, GET /api/batches,
GET /api/batches/{name}, POST /api/batches/{name}/cancel, and the batch filter of /api/jobs."""

from __future__ import annotations

from queuectl import Queue


def test_batches_over_http(client, queue: Queue) -> None:
    made = client.post(
        "/api/jobs",
        json=[
            {"command": "true", "id": "a", "batch": "b"},
            {
                "command": "true",
                "id": "c",
                "batch": "b",
                "depends_on": [{"id": "a", "on": "finished"}],
            },
            {"command": "true", "id": "after", "after_batch": ["b"]},
            {"command": "true", "id": "other"},
        ],
    )
    assert made.status_code == 201, made.text
    assert [j["batch"] for j in made.json()] == ["b", "b", None, None]
    listed = client.get("/api/batches").json()
    assert [(b["name"], b["total"], b["done"], b["finished"]) for b in listed] == [
        ("b", 2, 0, False)
    ]
    assert listed[0]["counts"]["pending"] == 2
    one = client.get("/api/batches/b").json()
    assert sorted(j["id"] for j in one["jobs"]) == ["a", "c"]
    jobs = client.get("/api/jobs", params={"batch": "b"}).json()["jobs"]
    assert sorted(j["id"] for j in jobs) == ["a", "c"]
    assert client.get("/api/batches/nope").status_code == 404
    cancelled = client.post("/api/batches/b/cancel")
    assert cancelled.json() == {"cancelled": 2}
    got = client.get("/api/batches/b").json()
    assert (got["finished"], got["completed"], got["counts"]["cancelled"]) == (True, False, 2)
    assert queue.get("after").state == "cancelled"
    assert queue.get("other").state == "pending"
    assert client.post("/api/batches/nope/cancel").status_code == 404


def test_bad_conditions_over_http_are_refused(client, queue: Queue) -> None:
    queue.enqueue("true", id="a")
    bad = client.post("/api/jobs", json={"command": "true", "depends_on": [{"id": "a", "on": "x"}]})
    assert bad.status_code in (400, 422)
    assert [j.id for j in queue.list()] == ["a"]
