"""GET /api/jobs?search= and `list --search`, on both stores."""

from __future__ import annotations

import json
from typing import Any

from queuectl import Queue


def test_api_search_filters_with_state_and_queue(client: Any, queue: Queue) -> None:
    queue.enqueue("rsync /srv backup:", id="sync-1", queue="ops")
    queue.enqueue("pytest -x", id="test-2", queue="ci")
    queue.enqueue("rsync /home backup:", id="sync-3", queue="ci")
    got = client.get("/api/jobs", params={"search": "RSYNC"}).json()
    assert [j["id"] for j in got["jobs"]] == ["sync-3", "sync-1"]
    assert got["next_cursor"] is None
    got = client.get("/api/jobs", params={"search": "rsync", "queue": "ci"}).json()
    assert [j["id"] for j in got["jobs"]] == ["sync-3"]
    got = client.get("/api/jobs", params={"search": "test-", "state": "pending"}).json()
    assert [j["id"] for j in got["jobs"]] == ["test-2"]
    got = client.get("/api/jobs", params={"search": "rsync", "limit": 1}).json()
    assert [j["id"] for j in got["jobs"]] == ["sync-3"]
    more = client.get(
        "/api/jobs", params={"search": "rsync", "limit": 1, "cursor": got["next_cursor"]}
    ).json()
    assert [j["id"] for j in more["jobs"]] == ["sync-1"]
    # An empty search filters nothing, as an empty state does.
    assert len(client.get("/api/jobs", params={"search": ""}).json()["jobs"]) == 3


def test_list_search_on_the_command_line(cli: Any, queue: Queue) -> None:
    queue.enqueue("rsync /srv backup:", id="sync-1")
    queue.enqueue("pytest -x", id="test-2")
    done = cli("list", "--search", "rsync", "--json")
    assert done.returncode == 0, done.stderr
    assert [j["id"] for j in json.loads(done.stdout)] == ["sync-1"]
    empty = cli("list", "--search", "")
    assert empty.returncode == 2
    assert "search" in empty.stderr
