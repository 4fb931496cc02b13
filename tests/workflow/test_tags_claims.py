"""Runner tags and job requirements with real runners: only a runner with every tag a job
requires claims it, through the plain claim and under flow control; `explain` says which
tags are missing; the CLI takes and shows them."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from queuectl import Queue
from tests.support.runners import RunnerProcess, runner_of
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until


def ran_on(queue: Queue, job_id: str) -> str | None:
    return queue.history(job_id)[0].runner


def runner_id(queue: Queue, runner: RunnerProcess) -> str:
    found = runner_of(queue, runner.pid)
    assert found is not None
    return found.id


def test_only_a_runner_with_every_required_tag_claims(
    queue: Queue, start_runner: Callable[..., Any]
) -> None:
    plain = runner_id(queue, start_runner("--count", "4"))
    gpu = runner_id(queue, start_runner("--count", "4", "--tag", "gpu"))
    both = runner_id(queue, start_runner("--count", "4", "--tag", "gpu", "--tag", "cuda12"))
    needs_gpu = [queue.enqueue("sleep 0.1", requires=["gpu"]).id for _ in range(8)]
    needs_both = [queue.enqueue("sleep 0.1", requires=["cuda12", "gpu"]).id for _ in range(4)]
    anything = [queue.enqueue("sleep 0.1").id for _ in range(8)]
    ids = needs_gpu + needs_both + anything
    wait_until(all_in(queue, "completed", *ids), 60, "the jobs")
    assert {ran_on(queue, j) for j in needs_gpu} <= {gpu, both}
    assert {ran_on(queue, j) for j in needs_both} == {both}
    assert queue.get(needs_both[0]).requires == ["cuda12", "gpu"]
    assert plain in {r.id for r in queue.runners()}


def test_flow_control_keeps_to_tags(queue: Queue, start_runner: Callable[..., Any]) -> None:
    queue.set_queue("limited", concurrency=2)
    plain = runner_id(queue, start_runner("--count", "3"))
    limited = [queue.enqueue("sleep 0.1", queue="limited", requires=["big"]).id for _ in range(4)]
    locked = [queue.enqueue("sleep 0.1", lock="k", requires=["big"]).id for _ in range(3)]
    free = [queue.enqueue("sleep 0.1", requires=["big"]).id for _ in range(3)]
    counted = [queue.enqueue("sleep 0.1", queue="limited").id for _ in range(2)]
    ids = limited + locked + free
    wait_until(all_in(queue, "completed", *counted), 20, "the jobs that require nothing")
    time.sleep(1)  # more claims of the untagged runner, each under flow control: none takes them
    assert all_in(queue, "pending", *ids)()
    tagged = runner_id(queue, start_runner("--count", "3", "--tag", "big"))
    wait_until(all_in(queue, "completed", *ids), 60, "the jobs")
    assert {ran_on(queue, j) for j in ids} == {tagged}
    assert plain != tagged


def test_explain_names_the_missing_tags(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    start_runner("--tag", "cpu")
    job = queue.enqueue("true", requires=["gpu", "cpu"]).id
    time.sleep(1.5)  # a few claims of the untagged runner: none takes it
    assert queue.get(job).state == "pending"
    answer = json.loads(ok(cli("explain", job, "--json")))
    assert answer["reason"] == "no_runner_with_tags"
    assert "gpu" in answer["message"]
    assert "--tag cpu --tag gpu" in answer["message"]
    start_runner("--tag", "gpu", "--tag", "cpu")
    wait_until(all_in(queue, "completed", job), 20, "the job")


def test_cli_requires_and_worker_tags(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    job = json.loads(
        ok(cli("enqueue", "--requires", "gpu", "--requires", "a.b", "--json", "-c", "true"))
    )[0]
    assert job["requires"] == ["a.b", "gpu"]
    plain = json.loads(ok(cli("enqueue", "--json", "-c", "true")))[0]
    assert plain["requires"] == []
    line = refused(cli("enqueue", "--requires", "no spaces", "-c", "true"))
    assert "requires" in line
    assert refused(cli("worker", "start", "--tag", "bad tag")).startswith("error: --tag")
    start_runner("--tag", "gpu", "--tag", "a.b")
    listed = ok(cli("worker", "list"))
    assert "TAGS" in listed
    assert "a.b,gpu" in listed
    runners = json.loads(ok(cli("worker", "list", "--json")))
    assert runners[0]["tags"] == ["a.b", "gpu"]
    wait_until(all_in(queue, "completed", job["id"], plain["id"]), 20, "the jobs")
    assert len(queue.list()) == 2
