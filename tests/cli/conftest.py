"""Helpers of the CLI tests: set up jobs in given states through the store, and dump the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from queuectl.models import new_job
from queuectl.store import Store, open_store
from tests.support import fake_runner


@pytest.fixture
def store(target: str) -> Iterator[Store]:
    opened = open_store(target)
    yield opened
    opened.close()


def finish(
    store: Store, job_id: str, exit_code: int, owner: str = "setup", output: bytes | None = None
) -> str:
    """Claim `job_id` (alone in its queue) and end its attempt, having printed `output`; its
    new state."""
    return fake_runner.run(store, job_id, exit_code, owner=owner, output=output, duration_ms=0)


def make(store: Store, job_id: str, state: str, **fields: Any) -> None:
    """A job `job_id` in `state` (pending, completed, dead, cancelled), by default in a queue of
    its own (a given queue must hold no other due job)."""
    fields.setdefault("queue", f"q-{job_id}")
    if state == "dead":
        fields["max_retries"] = 0
    store.enqueue_many([new_job({"id": job_id, "command": "true", **fields})])
    if state in ("completed", "dead"):
        assert finish(store, job_id, 0 if state == "completed" else 1) == state
    elif state == "cancelled":
        store.cancel([job_id])
    else:
        assert state == "pending"


def dump(store: Store) -> str:
    """Everything a command could change: jobs, their history and output, config, queues and
    their limits, schedules and hooks."""
    jobs = [job.to_dict() for job in store.list_jobs().jobs]
    outputs = {
        job["id"]: [repr(a) for a in store.history(job["id"])]
        + [repr(store.output(job["id"], a.attempt)) for a in store.history(job["id"])]
        for job in jobs
    }
    return json.dumps(
        {
            "jobs": jobs,
            "outputs": outputs,
            "config": store.config(),
            "queues": store.queues(),
            "limits": {name: repr(s) for name, s in store.queue_settings().items()},
            "schedules": [repr(s) for s in store.schedules()],
            "hooks": [repr(h) for h in store.hooks()],
        },
        sort_keys=True,
    )
