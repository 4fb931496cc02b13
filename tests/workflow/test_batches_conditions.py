"""Dependency conditions on both stores: --after (completed), --after-any (finished),
--after-failure (dead) for each way a dependency ends, settled as runners settle, cancelled
naming the dependency when the condition can no longer be met, and what show and explain say."""

from __future__ import annotations

from typing import Any

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError
from queuectl.lifecycle import Fence, Outcome
from tests.workflow.conftest import Cli, ok


def run(queue: Queue, job_id: str, exit_code: int) -> None:
    """Claim the job (and whatever else is due) and settle it as a runner does."""
    store = queue._store
    claims = {c.id: c for c in store.finish_and_claim("r", [], 50, None, 30).claims}
    claim = claims[job_id]
    fence = None
    if claim.max_retries is not None:
        fence = Fence(claim.attempt, claim.token, claim.max_retries, claim.no_retry_exit_codes)
    outcome = Outcome(job_id, claim.attempt, exit_code, None, 5, token=claim.token, fence=fence)
    store.finish_and_claim("r", [outcome], 0, None, 30)
    for other in claims:  # give the others back, untouched
        if other != job_id:
            store.release("r", other, claims[other].token)


def dependants(queue: Queue) -> dict[str, Any]:
    queue.enqueue("true", id="on_done", depends_on=["dep"])
    queue.enqueue("true", id="on_any", depends_on=[{"id": "dep", "on": "finished"}])
    queue.enqueue("true", id="on_fail", depends_on=[{"id": "dep", "on": "failed"}])
    queue.enqueue("true", id="after_fail", depends_on=["on_fail"])
    queue.enqueue("true", id="any_after_fail", depends_on=[{"id": "on_fail", "on": "finished"}])
    return {}


def runnable(queue: Queue) -> list[str]:
    return sorted(
        j.id
        for j in queue.list(state="pending")
        if queue.explain(j.id)["reason"] != "waiting_for_dependency"
    )


def states(queue: Queue) -> dict[str, tuple[str, str | None]]:
    return {j.id: (j.state, j.last_error) for j in queue.list() if j.id != "dep"}


def test_a_dependency_that_completes(queue: Queue) -> None:
    queue.enqueue("true", id="dep", max_retries=0)
    dependants(queue)
    run(queue, "dep", 0)
    assert states(queue) == {
        "on_done": ("pending", None),
        "on_any": ("pending", None),
        "on_fail": ("cancelled", "dependency dep is completed"),
        "after_fail": ("cancelled", "dependency on_fail is cancelled"),
        "any_after_fail": ("pending", None),
    }
    assert runnable(queue) == ["any_after_fail", "on_any", "on_done"]


def test_a_dependency_that_ends_dead(queue: Queue) -> None:
    queue.enqueue("false", id="dep", max_retries=0)
    dependants(queue)
    run(queue, "dep", 1)
    assert states(queue) == {
        "on_done": ("cancelled", "dependency dep is dead"),
        "on_any": ("pending", None),
        "on_fail": ("pending", None),
        "after_fail": ("pending", None),
        "any_after_fail": ("pending", None),
    }
    assert runnable(queue) == ["on_any", "on_fail"]
    run(queue, "on_fail", 0)
    assert runnable(queue) == ["after_fail", "any_after_fail", "on_any"]


def test_a_dependency_that_is_cancelled(queue: Queue) -> None:
    queue.enqueue("true", id="dep", delay=3600)
    dependants(queue)
    queue.cancel("dep")
    assert states(queue) == {
        "on_done": ("cancelled", "dependency dep is cancelled"),
        "on_any": ("pending", None),
        "on_fail": ("cancelled", "dependency dep is cancelled"),
        "after_fail": ("cancelled", "dependency dep is cancelled"),
        "any_after_fail": ("pending", None),
    }
    assert runnable(queue) == ["any_after_fail", "on_any"]


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        ("completed", {"on_done": "pending", "on_any": "pending", "on_fail": "cancelled"}),
        ("dead", {"on_done": "cancelled", "on_any": "pending", "on_fail": "pending"}),
        ("cancelled", {"on_done": "cancelled", "on_any": "pending", "on_fail": "cancelled"}),
    ],
)
def test_conditions_on_a_dependency_already_finished(
    queue: Queue, end: str, expected: dict[str, str]
) -> None:
    queue.enqueue("exit 1", id="dep", max_retries=0, delay=0 if end != "cancelled" else 3600)
    if end == "cancelled":
        queue.cancel("dep")
    else:
        run(queue, "dep", 0 if end == "completed" else 1)
    queue.enqueue("true", id="on_done", depends_on=["dep"])
    queue.enqueue("true", id="on_any", depends_on=[{"id": "dep", "on": "finished"}])
    queue.enqueue("true", id="on_fail", depends_on=[{"id": "dep", "on": "failed"}])
    assert {k: v[0] for k, v in states(queue).items()} == expected
    for job_id, state in expected.items():
        if state == "pending":
            assert queue.explain(job_id)["reason"] != "waiting_for_dependency"


def test_bad_conditions_unknown_ids_and_cycles_are_refused(queue: Queue) -> None:
    queue.enqueue("true", id="dep")
    for bad in ({"id": "dep", "on": "sometimes"}, {"id": "dep", "when": "x"}, {"on": "failed"}):
        with pytest.raises(InvalidInputError):
            queue.enqueue("true", depends_on=[bad])
    with pytest.raises(InvalidInputError, match="no job 'nope'"):
        queue.enqueue("true", depends_on=[{"id": "nope", "on": "finished"}])
    with pytest.raises(InvalidInputError):
        queue.enqueue("true", id="self", depends_on=[{"id": "self", "on": "failed"}])
    assert [j.id for j in queue.list()] == ["dep"]


def test_show_and_explain_name_each_condition(cli: Cli, queue: Queue) -> None:
    for dep in ("a", "b", "c"):
        ok(cli("enqueue", "--id", dep, "--delay", "1h", "--command", "true"))
    ok(
        cli(
            "enqueue",
            "--id",
            "x",
            "--after",
            "a",
            "--after-any",
            "b",
            "--after-failure",
            "c",
            "-c",
            "true",
        )
    )
    shown = ok(cli("show", "x"))
    assert "a (pending), " in shown
    assert "b (pending; on finished: waiting)" in shown
    assert "c (pending; on failed: waiting)" in shown
    explained = ok(cli("explain", "x"))
    assert "a (pending), b to finish (pending), c to fail (pending)" in explained
    ok(cli("cancel", "b"))
    assert queue.conditions("x") == [
        {"id": "a", "on": "completed", "state": "pending", "met": None},
        {"id": "b", "on": "finished", "state": "cancelled", "met": True},
        {"id": "c", "on": "failed", "state": "pending", "met": None},
    ]
    assert "b (cancelled; on finished: met)" in ok(cli("show", "x"))
