"""Job limits and what attempts cost through the HTTP API, on both stores."""

from __future__ import annotations

from queuectl import Queue
from tests.api.conftest import claim

MIB = 1 << 20


def test_jobs_take_limits_and_queues_give_defaults(client, queue: Queue) -> None:
    made = client.post("/api/jobs", json={"command": "true", "memory": "512M", "cpus": 1.5})
    assert made.status_code == 201, made.text
    job = made.json()[0] if isinstance(made.json(), list) else made.json()
    assert (job["memory"], job["cpus"], job["max_procs"]) == (512 * MIB, 1.5, None)
    refused = client.post("/api/jobs", json={"command": "true", "memory": "a lot"})
    assert refused.status_code == 422
    assert "memory" in refused.json()["error"]

    shown = client.put("/api/queues/render", json={"memory": "4G", "max_procs": 64}).json()
    assert (shown["memory"], shown["cpus"], shown["max_procs"]) == (4 << 30, None, 64)
    kept = client.put("/api/queues/render", json={"concurrency": 2}).json()
    assert (kept["memory"], kept["concurrency"]) == (4 << 30, 2)
    cleared = client.put("/api/queues/render", json={"memory": None}).json()
    assert (cleared["memory"], cleared["max_procs"]) == (None, 64)
    assert client.put("/api/queues/render", json={"cpus": 0}).status_code == 422


def test_a_claim_carries_the_queue_defaults_a_job_does_not_override(client, queue: Queue) -> None:
    queue.set_queue("render", memory="4G", cpus=2)
    queue.enqueue("true", queue="render", id="plain")
    queue.enqueue("true", queue="render", memory="8G", id="big", priority=-1)
    queue.enqueue("true", id="free", priority=-2)
    claims = {c.id: (c.memory, c.cpus, c.max_procs) for c in claim(queue, 3)}
    assert claims == {
        "plain": (4 << 30, 2.0, None),
        "big": (8 << 30, 2.0, None),
        "free": (None, None, None),
    }
