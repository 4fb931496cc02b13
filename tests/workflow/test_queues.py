"""Named queues: pause and resume under a live runner, runners serving some queues, counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from queuectl import Queue
from queuectl.models import STATES
from tests.workflow.conftest import Cli, all_in, ok, wait_until

ZERO = dict.fromkeys(STATES, 0)

#: A queue with no flow control (SPEC 9.2).
NO_LIMITS = {"concurrency": None, "rate": None, "memory": None, "cpus": None, "max_procs": None}


def test_a_paused_queue_keeps_its_jobs_until_resumed(
    cli: Cli, cli_json: Callable[..., Any], queue: Queue, start_runner: Callable[..., Any]
) -> None:
    # Pausing a queue that has no jobs yet is allowed, and the pause is remembered.
    ok(cli("queue", "pause", "reports"))
    assert cli_json("queue", "list") == {"reports": {**NO_LIMITS, "paused": True, "counts": ZERO}}
    held = [queue.enqueue("true", queue="reports").id for _ in range(2)]
    start_runner("--count", "2")
    free = [queue.enqueue("true", queue="mail").id for _ in range(2)]

    wait_until(all_in(queue, "completed", *free), 15, "the jobs of the active queue to run")
    # The runner has claimed since the held jobs were enqueued: they were not claimable.
    assert all(job.state == "pending" and job.attempts == 0 for job in map(queue.get, held))
    assert cli_json("queue", "list")["reports"] == {
        **NO_LIMITS,
        "paused": True,
        "counts": {**ZERO, "pending": 2},
    }

    resumed_at_ms = time.time_ns() // 1_000_000
    ok(cli("queue", "resume", "reports"))
    wait_until(all_in(queue, "completed", *held), 15, "the resumed queue's jobs to run")
    for job_id in held:
        started = queue.get(job_id).started_at_ms
        assert started is not None
        assert started - resumed_at_ms < 3000, f"{job_id} started {started - resumed_at_ms}ms late"
    assert cli_json("queue", "list")["reports"]["paused"] is False


def test_a_runner_of_one_queue_leaves_the_others_alone(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    other = queue.enqueue("true", queue="b", priority=9).id
    start_runner("--queue", "a", "--count", "2")
    mine = [queue.enqueue("true", queue="a").id for _ in range(3)]
    wait_until(all_in(queue, "completed", *mine), 15, "queue a's jobs to run")
    job = queue.get(other)
    assert (job.state, job.attempts) == ("pending", 0)
    [runner] = queue.runners()
    assert runner.queues == ["a"]


def test_queue_list_and_status_count_jobs_per_queue(
    cli: Cli, cli_json: Callable[..., Any], queue: Queue, start_runner: Callable[..., Any]
) -> None:
    done = queue.enqueue("true", queue="q1").id
    dead = queue.enqueue("exit 1", queue="q2", max_retries=0).id
    start_runner("--queue", "q1", "--queue", "q2")
    wait_until(all_in(queue, "completed", done), 15, "the q1 job to complete")
    wait_until(all_in(queue, "dead", dead), 15, "the q2 job to die")
    for _ in range(2):
        queue.enqueue("true", queue="q1", delay="1h")
    queue.cancel(queue.enqueue("true", queue="q2", delay="1h").id)
    queue.enqueue("true")  # the default queue: no runner serves it
    ok(cli("queue", "pause", "idle"))

    expected = {
        "default": {**ZERO, "pending": 1},
        "q1": {**ZERO, "completed": 1, "pending": 2},
        "q2": {**ZERO, "dead": 1, "cancelled": 1},
    }
    queues = cli_json("queue", "list")
    assert queues == {
        **{
            name: {**NO_LIMITS, "paused": False, "counts": counts}
            for name, counts in expected.items()
        },
        "idle": {**NO_LIMITS, "paused": True, "counts": ZERO},
    }
    status = cli_json("status")
    assert status["queues"] == expected
    assert status["counts"] == {**ZERO, "pending": 3, "completed": 1, "dead": 1, "cancelled": 1}
    assert [r["workers"] for r in status["runners"]] == [1]
    assert status["done_last_minute"] == 1
