"""Dependencies: start order across workers, the cancel cascade, and refused dependencies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until

# job id -> its dependencies; priorities rise along each path, so a runner that ignored the
# edges would start the dependants first.
CHAIN = {"c1": [], "c2": ["c1"], "c3": ["c2"], "c4": ["c3"]}
DIAMOND = {"top": [], "left": ["top"], "right": ["top"], "bottom": ["left", "right"]}


def test_chain_and_diamond_run_in_dependency_order_on_several_workers(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "order.txt"
    graph = {**CHAIN, **DIAMOND}
    batch = tmp_path / "jobs.jsonl"
    batch.write_text(
        "".join(
            json.dumps(
                {
                    "id": job_id,
                    "command": f"sleep 0.2; echo $QUEUECTL_JOB_ID >> {out}",
                    "depends_on": deps,
                    "priority": 10 * n,
                }
            )
            + "\n"
            for n, (job_id, deps) in enumerate(graph.items())
        )
    )
    assert ok(cli("enqueue", "--file", str(batch))).split() == list(graph)
    start_runner("--count", "4")
    start_runner("--count", "2")

    wait_until(all_in(queue, "completed", *graph), 30, "every job to complete")
    order = out.read_text().split()
    assert sorted(order) == sorted(graph), order
    for job_id, deps in graph.items():
        for dep in deps:
            assert order.index(dep) < order.index(job_id), f"{job_id} ran before {dep}: {order}"
    # Independent branches do run side by side: both middle jobs of the diamond started
    # before either finished writing would be luck, so only the edges are asserted.


def test_a_dead_dependency_cancels_its_dependants_and_theirs(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    queue.enqueue("exit 3", id="root", max_retries=0)
    queue.enqueue("true", id="fine")
    queue.enqueue("true", id="child", depends_on=["root"])
    queue.enqueue("true", id="grandchild", depends_on=["child"])
    queue.enqueue("true", id="mixed", depends_on=["fine", "child"])
    queue.enqueue("true", id="great", depends_on=["grandchild", "mixed"])
    doomed = ("child", "grandchild", "mixed", "great")
    start_runner("--count", "2")

    wait_until(all_in(queue, "dead", "root"), 20, "root to be dead")
    wait_until(all_in(queue, "completed", "fine"), 20, "fine to complete")
    wait_until(all_in(queue, "cancelled", *doomed), 10, "the dependants to be cancelled")
    for job_id in doomed:
        job = queue.get(job_id)
        assert "root" in (job.last_error or ""), (job_id, job.last_error)
        assert job.attempts == 0
        assert job.finished_at_ms is not None

    # A dependant enqueued after its dependency died is created cancelled ...
    [late] = json.loads(ok(cli("enqueue", "--after", "root", "--command", "true", "--json")))
    assert late["state"] == "cancelled"
    assert "root" in late["last_error"]
    # ... and one whose dependency already completed is due at once.
    [after_fine] = json.loads(ok(cli("enqueue", "--after", "fine", "--command", "true", "--json")))
    assert after_fine["state"] == "pending"
    wait_until(all_in(queue, "completed", after_fine["id"]), 10, "the late dependant to run")
    assert queue.get(late["id"]).state == "cancelled"


def test_cancelling_a_dependency_cancels_its_dependants(cli: Cli, queue: Queue) -> None:
    queue.enqueue("true", id="base", delay="1h")
    queue.enqueue("true", id="other")
    queue.enqueue("true", id="mid", depends_on=["base"])
    queue.enqueue("true", id="leaf", depends_on=["mid", "other"])
    queue.enqueue("true", id="bystander", depends_on=["other"])

    ok(cli("cancel", "base"))
    for job_id in ("mid", "leaf"):
        job = queue.get(job_id)
        assert job.state == "cancelled", job_id
        assert "base" in (job.last_error or ""), (job_id, job.last_error)
    assert queue.get("base").last_error == "cancelled"
    assert queue.get("other").state == "pending"
    assert queue.get("bystander").state == "pending"


def _snapshot(queue: Queue) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    return [job.to_dict() for job in queue.list()], queue.queues()


def test_bad_dependencies_are_refused_and_change_nothing(
    cli: Cli, queue: Queue, tmp_path: Path
) -> None:
    queue.enqueue("true", id="exists")
    before = _snapshot(queue)

    def batch(*jobs: dict[str, Any]) -> str:
        path = tmp_path / f"batch-{len(list(tmp_path.iterdir()))}.jsonl"
        path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
        return str(path)

    cases: list[tuple[list[str], list[str]]] = [
        (["enqueue", "--after", "ghost", "--command", "true"], ["ghost"]),
        (["enqueue", "--after", "exists", "--after", "ghost", "--command", "true"], ["ghost"]),
        (["enqueue", '{"command": "true", "depends_on": ["ghost"]}'], ["ghost"]),
        (["enqueue", "--id", "me", "--after", "me", "--command", "true"], ["itself"]),
        (["enqueue", '{"id": "me", "command": "true", "depends_on": ["me"]}'], ["itself"]),
        # a line that depends on a later line of its batch
        (
            [
                "enqueue",
                "--file",
                batch(
                    {"id": "first", "command": "true"},
                    {"id": "second", "command": "true", "depends_on": ["third"]},
                    {"id": "third", "command": "true"},
                ),
            ],
            ["line 2", "third", "earlier"],
        ),
        # a line that depends on an unknown job, after lines that were fine
        (
            [
                "enqueue",
                "--file",
                batch(
                    {"id": "first", "command": "true", "depends_on": ["exists"]},
                    {"id": "second", "command": "true", "depends_on": ["ghost"]},
                ),
            ],
            ["ghost"],
        ),
        # a would-be cycle: each depends on the other
        (
            [
                "enqueue",
                "--file",
                batch(
                    {"id": "ping", "command": "true", "depends_on": ["pong"]},
                    {"id": "pong", "command": "true", "depends_on": ["ping"]},
                ),
            ],
            ["line 1", "pong", "earlier"],
        ),
    ]
    for args, words in cases:
        line = refused(cli(*args))
        for word in words:
            assert word in line, (args, line)
        assert _snapshot(queue) == before, args
    assert [job.id for job in queue.list()] == ["exists"]
