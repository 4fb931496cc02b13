"""Batch hooks and --after-batch on both stores: batch_completed / batch_finished fired exactly
once per batch finishing (also with runners SIGKILLed mid-batch), with QUEUECTL_EVENT_BATCH;
a job after a batch runs once all of it completed, and is cancelled naming it otherwise."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Job, Queue
from queuectl.errors import InvalidInputError
from tests.workflow.conftest import Cli, ok, wait_until


def batch_hook_jobs(queue: Queue) -> list[Job]:
    return [j for j in queue.list() if j.made_by is not None and "batch" in j.made_by]


def events(queue: Queue) -> Counter[tuple[str, str]]:
    return Counter(
        (j.env["QUEUECTL_EVENT"], j.env["QUEUECTL_EVENT_BATCH"]) for j in batch_hook_jobs(queue)
    )


def add_hook(cli: Cli) -> None:
    ok(
        cli(
            "hook",
            "add",
            "hb",
            "--on",
            "batch_completed,batch_finished",
            "--job-queue",
            "hooks",
            "--command",
            "echo $QUEUECTL_EVENT_BATCH",
        )
    )


def test_batch_hooks_fire_once_per_finishing(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    add_hook(cli)
    ok(cli("enqueue", "--array", "1-4", "--id", "good", "--command", "true"))
    ok(cli("enqueue", "--batch", "mixed", "--max-retries", "0", "--id", "m1", "--command", "true"))
    ok(
        cli(
            "enqueue",
            "--batch",
            "mixed",
            "--max-retries",
            "0",
            "--id",
            "m2",
            "-c",
            f"[ -e {tmp_path}/x ] || {{ touch {tmp_path}/x; exit 4; }}",
        )
    )
    ok(cli("enqueue", "--batch", "gone", "--id", "g1", "--delay", "1h", "--command", "true"))
    ok(cli("cancel", "--batch", "gone"))
    start_runner("--count", "3")
    expected = {
        ("batch_completed", "good"): 1,
        ("batch_finished", "mixed"): 1,
        ("batch_finished", "gone"): 1,
    }
    wait_until(lambda: events(queue) == expected, 30, "one hook job per batch")
    wait_until(lambda: all(j.state == "completed" for j in batch_hook_jobs(queue)), 30, "hooks")
    hook = next(j for j in batch_hook_jobs(queue) if j.env["QUEUECTL_EVENT_BATCH"] == "good")
    assert queue.output(hook.id) == b"good\n"
    # The dead job retried: the batch finishes again, all completed this time.
    ok(cli("dlq", "retry", "--batch", "mixed"))
    expected[("batch_completed", "mixed")] = 1
    wait_until(lambda: events(queue) == expected, 30, "the second finishing's hook job")
    assert queue.batch("mixed")["completed"]


def test_batch_hooks_fire_exactly_once_with_runners_sigkilled_mid_batch(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    add_hook(cli)
    total = 80
    ok(cli("enqueue", "--array", f"1-{total}", "--id", "arr", "--max-retries", "9", "-c", "true"))
    for round_ in range(1, 4):
        runner = start_runner("--count", "4")
        wait_until(lambda r=round_: queue.batch("arr")["done"] >= 20 * r, 60, f"{20 * round_} done")
        runner.send(signal.SIGKILL)
        runner.wait()
    start_runner("--count", "4")
    wait_until(lambda: queue.batch("arr")["finished"], 60, "the batch to finish")
    wait_until(lambda: sum(events(queue).values()) >= 1, 10, "its hook job")
    assert events(queue) == {("batch_completed", "arr"): 1}


def test_after_batch_runs_once_all_completed_and_is_cancelled_otherwise(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    ok(cli("enqueue", "--array", "1-3", "--id", "map", "--command", "sleep 0.2"))
    ok(cli("enqueue", "--after-batch", "map", "--id", "reduce", "--command", "true"))
    ok(cli("enqueue", "--after", "reduce", "--id", "publish", "--command", "true"))
    ok(cli("enqueue", "--batch", "bad", "--max-retries", "0", "--id", "b1", "-c", "exit 2"))
    ok(cli("enqueue", "--after-batch", "bad", "--id", "never", "--command", "true"))
    ok(cli("enqueue", "--after", "never", "--id", "never2", "--command", "true"))
    assert queue.explain("reduce")["reason"] != "ready"
    start_runner("--count", "3")
    wait_until(lambda: queue.get("publish").state == "completed", 30, "the reduce step")
    last_end = max(queue.get(f"map.{i}").finished_at_ms or 0 for i in (1, 2, 3))
    assert (queue.get("reduce").started_at_ms or 0) >= last_end
    wait_until(lambda: queue.get("never2").state == "cancelled", 30, "the cascade")
    assert queue.get("never").last_error == "dependency batch bad is finished, not all completed"
    assert queue.get("never2").last_error == "dependency never is cancelled"


def test_after_batch_on_a_finished_batch_and_an_unknown_one(queue: Queue) -> None:
    queue.enqueue("true", batch="done", id="d1")
    queue.cancel("d1")
    late = queue.enqueue("true", after_batch=["done"])
    assert late.state == "cancelled"
    with pytest.raises(InvalidInputError, match="no batch 'nope'"):
        queue.enqueue("true", after_batch=["nope"])
