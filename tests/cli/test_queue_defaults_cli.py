"""Queue defaults: `queue set NAME --timeout D --max-retries N` for the queue's jobs that set
none of their own, applied as each attempt starts (jobs already waiting too); both stores."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator

import pytest

from queuectl import Queue
from queuectl.lifecycle import Fence, Outcome
from tests.support.clock import FakeClock
from tests.support.runners import (  # noqa: F401 - fixtures used here
    RunnerProcess,
    process_env,
    start_runner,
    tag,
    wait_until,
)

Cli = Callable[..., subprocess.CompletedProcess[str]]
LEASE_S = 30.0


@pytest.fixture
def fake(target: str) -> Iterator[tuple[Queue, FakeClock]]:
    """A queue on the fake clock; its store claims as a runner would."""
    clock = FakeClock()
    opened = Queue(target, clock)
    yield opened, clock
    opened.close()


def fail_once(queue: Queue, job_id: str, queue_name: str) -> str:
    """Claim the job (alone in its queue), fail its attempt; its state after."""
    store = queue._store
    [claim] = store.finish_and_claim("r1", [], 1, [queue_name], LEASE_S).claims
    assert claim.id == job_id
    assert claim.max_retries is not None
    fence = Fence(claim.attempt, claim.token, claim.max_retries, claim.no_retry_exit_codes)
    outcome = Outcome(job_id, claim.attempt, 1, None, 5, fence=fence, token=claim.token)
    return store.finish_and_claim("r1", [outcome], 0, None, LEASE_S).settled[job_id].state


def test_defaults_reach_waiting_jobs_that_set_none_and_spare_those_that_do(
    fake: tuple[Queue, FakeClock],
) -> None:
    queue, _ = fake
    plain = queue.enqueue("true", queue="q").id
    own = queue.enqueue("true", queue="q", timeout=7, max_retries=2).id
    shown = queue.set_queue_defaults("q", timeout="1m", max_retries=0)
    assert shown["defaults"] == {"timeout": 60.0, "max_retries": 0}
    claims = {c.id: c for c in queue._store.finish_and_claim("r1", [], 5, None, LEASE_S).claims}
    assert (claims[plain].timeout, claims[plain].max_retries) == (60.0, 0)
    assert (claims[own].timeout, claims[own].max_retries) == (7.0, 2)
    # The job's own fields are as enqueued: the defaults belong to the queue.
    assert (queue.get(plain).timeout, queue.get(plain).max_retries) == (None, 3)


def test_a_default_max_retries_decides_the_retry_and_none_clears_it(
    fake: tuple[Queue, FakeClock],
) -> None:
    queue, _ = fake
    queue.set_queue_defaults("q", max_retries=0)
    queue.enqueue("false", id="a", queue="q")
    assert fail_once(queue, "a", "q") == "dead"
    queue.set_queue_defaults("q", max_retries="none")
    assert "defaults" not in queue.queues()["q"]
    queue.enqueue("false", id="b", queue="q")
    assert fail_once(queue, "b", "q") == "failed"  # the configured default: 3 retries
    queue.set_queue_defaults("q", timeout=5)
    assert queue.queues()["q"]["defaults"] == {"timeout": 5.0, "max_retries": None}


def test_a_batch_jobs_failure_is_retried_as_its_queues_default_says(
    fake: tuple[Queue, FakeClock],
) -> None:
    # A batch job's claim carries its queue's default, as any job's does.
    queue, _ = fake
    queue.set_queue_defaults("q", max_retries=0)
    queue.enqueue("false", id="a", queue="q", batch="b")
    store = queue._store
    [claim] = store.finish_and_claim("r1", [], 1, ["q"], LEASE_S).claims
    assert claim.max_retries == 0
    outcome = Outcome("a", claim.attempt, 1, None, 5, token=claim.token)
    assert store.finish_and_claim("r1", [outcome], 0, None, LEASE_S).settled["a"].state == "dead"


def test_queue_set_from_the_cli_reaches_a_waiting_job(
    cli: Cli,
    queue: Queue,
    start_runner: Callable[..., RunnerProcess],  # noqa: F811 - the imported fixture
) -> None:
    job = queue.enqueue("sleep 5", queue="slow").id
    done = cli("queue", "set", "slow", "--timeout", "1s", "--max-retries", "0")
    assert done.returncode == 0, done.stderr
    assert "defaults timeout 1s, max retries 0" in done.stderr
    for bad in (["--timeout", "soon"], ["--max-retries", "-1"], ["--max-retries", "x"]):
        refused = cli("queue", "set", "slow", *bad)
        assert refused.returncode == 2, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    listed = json.loads(cli("queue", "list", "--json").stdout)
    assert listed["slow"]["defaults"] == {"timeout": 1.0, "max_retries": 0}
    assert "DEFAULTS" in cli("queue", "list").stdout
    start_runner()
    wait_until(lambda: queue.get(job).state == "dead", 20, "the job to time out, not retried")
    assert queue.get(job).last_error == "timed out after 1s"
    cleared = cli("queue", "set", "slow", "--timeout", "none", "--max-retries", "none")
    assert cleared.returncode == 0, cleared.stderr
    assert "defaults" not in json.loads(cli("queue", "list", "--json").stdout)["slow"]
