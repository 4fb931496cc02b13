"""`explain --json`: the reason a job is or is not running, for every reason there is."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.durations import local_text
from tests.workflow.conftest import Cli, all_in, ok, wait_until


def reason(cli: Cli, job_id: str) -> str:
    answer = json.loads(ok(cli("explain", job_id, "--json")))
    assert answer["id"] == job_id
    assert answer["message"]
    return str(answer["reason"])


def test_reasons_while_no_runner_is_up(cli: Cli, queue: Queue) -> None:
    later = queue.enqueue("true", delay="1h").id
    assert reason(cli, later) == "waiting_for_run_at"
    blocked = queue.enqueue("true", depends_on=[later]).id
    assert reason(cli, blocked) == "waiting_for_dependency"
    queue.pause("held")
    paused = queue.enqueue("true", queue="held").id
    assert reason(cli, paused) == "queue_paused"
    due = queue.enqueue("true").id
    assert reason(cli, due) == "no_runner"
    queue.cancel(later)
    assert reason(cli, later) == "finished"
    assert reason(cli, blocked) == "finished"


def test_reasons_with_a_busy_runner(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    start_runner("--count", "1", "--queue", "default")
    quick = queue.enqueue("true").id
    wait_until(all_in(queue, "completed", quick), 15, "the quick job to complete")
    assert reason(cli, quick) == "finished"

    hog = queue.enqueue("sleep 60").id
    wait_until(all_in(queue, "processing", hog), 15, "the hog to start")
    assert reason(cli, hog) == "running"
    waiting = queue.enqueue("true").id
    assert reason(cli, waiting) == "no_free_worker"
    elsewhere = queue.enqueue("true", queue="elsewhere").id
    assert reason(cli, elsewhere) == "no_runner"

    queue.cancel(hog)
    assert reason(cli, hog) == "finished"
    wait_until(all_in(queue, "completed", waiting), 15, "the waiting job to run")
    assert reason(cli, waiting) == "finished"


def test_a_job_whose_runner_died_on_another_host_has_lost_its_lease_owner(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    # Between one lease and two the job's owner is past its lease yet still listed: 3 s
    # leave room for a loaded machine's slow CLI calls inside that window.
    queue.set_config("lease_seconds", 3)
    runner = start_runner(env={"QUEUECTL_HOSTNAME": "other-host"})
    job_id = queue.enqueue("sleep 60").id
    wait_until(all_in(queue, "processing", job_id), 15, "the job to start")

    runner.process.send_signal(signal.SIGKILL)
    runner.process.wait(10)
    # From this host the runner of other-host looks alive until its lease runs out.
    wait_until(lambda: reason(cli, job_id) == "lease_owner_gone", 15, "lease_owner_gone")
    assert runner.pid in {r.pid for r in queue.runners()}  # still listed: only its lease tells
    assert queue.get(job_id).state == "processing"


def test_flow_control_reasons_name_what_holds_the_job(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    """SPEC 9.2: the limit holding a due job back, with the lock's holder (a key with odd
    characters) and when the rate window next allows a start."""
    gate = tmp_path / "gate"
    hold = f"while [ ! -e {gate} ]; do sleep 0.02; done"
    queue.set_queue("renders", concurrency=1)
    queue.set_queue("api", rate="1/1h")
    key = 'prod/eu ü "quoted" ;-- %s'
    start_runner("--count", "4")
    render = queue.enqueue(hold, queue="renders").id
    deploy = queue.enqueue(hold, lock=key).id
    called = queue.enqueue("true", queue="api").id
    wait_until(all_in(queue, "processing", render, deploy), 15, "the holders to start")
    wait_until(all_in(queue, "completed", called), 15, "the first call to run")

    next_render = queue.enqueue("true", queue="renders").id
    assert reason(cli, next_render) == "queue_concurrency_limit"
    next_deploy = queue.enqueue("true", lock=key).id
    answer = json.loads(ok(cli("explain", next_deploy, "--json")))
    assert answer["reason"] == "waiting_for_lock"
    assert deploy in answer["message"]
    next_call = queue.enqueue("true", queue="api").id
    answer = json.loads(ok(cli("explain", next_call, "--json")))
    assert answer["reason"] == "queue_rate_limit"
    opens = queue.history(called)[0].started_at_ms + 3600_000
    assert local_text(opens) in answer["message"]  # the one clock of every view

    gate.touch()
    wait_until(all_in(queue, "completed", next_render, next_deploy), 15, "the others to run")
    assert reason(cli, next_call) == "queue_rate_limit"
    queue.cancel(next_call)


def test_the_python_api_explains_and_waits(queue: Queue, start_runner: Callable[..., Any]) -> None:
    job = queue.enqueue("true")
    assert queue.explain(job.id)["reason"] == "no_runner"
    with pytest.raises(TimeoutError, match=job.id):
        queue.wait(job.id, timeout=0.2)
    start_runner()
    [done] = queue.wait(job.id, timeout=20)
    assert (done.id, done.state) == (job.id, "completed")
    assert queue.explain(job.id)["reason"] == "finished"
