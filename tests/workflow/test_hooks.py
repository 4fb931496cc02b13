"""Hooks end to end (SPEC 9.9): the CLI adds them, real runners settle jobs and run hook jobs."""

from __future__ import annotations

import json
import shlex
import signal
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from queuectl import Queue
from queuectl.models import Job
from tests.workflow.conftest import Cli, ok, refused, wait_until

REPORT = (
    'printf "%s %s %s %s [%s] [%s]\\n" "$QUEUECTL_EVENT" "$QUEUECTL_EVENT_JOB" '
    '"$QUEUECTL_EVENT_QUEUE" "$QUEUECTL_EVENT_ATTEMPT" "$QUEUECTL_EVENT_EXIT_CODE" '
    '"$QUEUECTL_EVENT_ERROR"'
)


def hook_jobs(queue: Queue) -> list[Job]:
    return [job for job in queue.list() if job.made_by is not None]


def finished_hook_jobs(queue: Queue, count: int, state: str = "completed") -> Callable[[], bool]:
    def done() -> bool:
        found = hook_jobs(queue)
        return len(found) >= count and all(job.state == state for job in found)

    return done


def test_each_event_runs_its_hook_job_with_the_event_in_its_environment(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    report = tmp_path / "events.txt"
    ok(cli("config", "set", "backoff_base", "1"))
    command = f"{REPORT} >> {shlex.quote(str(report))}"
    added = cli(
        "hook",
        "add",
        "h",
        "--on",
        "completed,failed,dead,cancelled",
        "--queue",
        "work",
        "--command",
        command,
        "--job-queue",
        "hooks",
    )
    assert added.returncode == 0, added.stderr
    ok(cli("enqueue", "--id", "ok", "--queue", "work", "--", "true"))
    ok(cli("enqueue", "--id", "bad", "--queue", "work", "--max-retries", "1", "--", "exit 3"))
    ok(cli("enqueue", "--id", "later", "--queue", "work", "--delay", "1h", "--", "true"))
    ok(cli("enqueue", "--id", "elsewhere", "--", "true"))  # another queue: no hook
    ok(cli("cancel", "later"))
    start_runner("--count", "2")

    wait_until(finished_hook_jobs(queue, 4), 30, "four completed hook jobs")
    assert sorted(report.read_text().splitlines()) == [
        "cancelled later work 0 [] [cancelled]",
        "completed ok work 1 [0] []",
        "dead bad work 2 [3] [exit code 3]",
        "failed bad work 1 [3] [exit code 3]",
    ]
    assert queue.get("elsewhere").state == "completed"
    assert len(queue.list()) == 8  # the four jobs and four hook jobs, which fired none
    made = {job.made_by: job for job in hook_jobs(queue)}
    assert {job.queue for job in made.values()} == {"hooks"}
    first = made["hook h: completed of ok"]
    assert "hook h: completed of ok" in ok(cli("show", first.id))
    assert ok(cli("show", first.id, "--json")).count('"made_by": "hook h: completed of ok"') == 1
    assert "made by hook h: completed of ok" in ok(cli("explain", first.id))
    assert "made_by" not in ok(cli("show", "ok", "--json"))


def test_a_failing_hook_is_retried_into_the_dlq_and_its_job_is_unaffected(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    ok(cli("config", "set", "backoff_base", "1"))
    ok(
        cli(
            "hook",
            "add",
            "broken",
            "--on",
            "completed,dead",
            "--command",
            "exit 7",
            "--max-retries",
            "1",
        )
    )
    ok(cli("enqueue", "--id", "job", "--", "true"))
    start_runner()

    wait_until(finished_hook_jobs(queue, 1, "dead"), 30, "the hook job to die")
    (made,) = hook_jobs(queue)
    assert (made.attempts, made.last_error) == (2, "exit code 7")
    assert [a.exit_code for a in queue.history(made.id)] == [7, 7]
    assert made.id in ok(cli("dlq", "list"))
    job = queue.get("job")
    assert (job.state, job.attempts) == ("completed", 1)
    assert len(queue.list()) == 2  # the dead hook job fired no `dead` hook


def test_a_dead_dependency_fires_cancelled_for_each_dependant(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    report = tmp_path / "events.txt"
    ok(
        cli(
            "hook",
            "add",
            "h",
            "--on",
            "dead,cancelled",
            "--command",
            f"{REPORT} >> {shlex.quote(str(report))}",
        )
    )
    queue.enqueue("exit 3", id="root", max_retries=0)
    queue.enqueue("true", id="child", depends_on=["root"])
    queue.enqueue("true", id="grandchild", depends_on=["child"])
    start_runner()

    wait_until(finished_hook_jobs(queue, 3), 30, "three completed hook jobs")
    assert sorted(report.read_text().splitlines()) == [
        "cancelled child default 0 [] [dependency root is dead]",
        "cancelled grandchild default 0 [] [dependency root is dead]",
        "dead root default 1 [3] [exit code 3]",
    ]


def test_sigkilled_runners_leave_exactly_one_hook_job_per_settled_job(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    """Runners SIGKILLed while they settle jobs: each completed job has exactly one hook job,
    since both are written by one transaction."""
    ok(cli("hook", "add", "h", "--on", "completed", "--command", "true", "--job-queue", "hooks"))
    total = 120
    queue.enqueue_many([{"id": f"j{n}", "command": "true", "queue": "work"} for n in range(total)])

    def completed() -> int:
        return queue.status()["queues"].get("work", {}).get("completed", 0)

    for round_ in range(1, 5):
        runner = start_runner("--count", "4", "--queue", "work")
        wait_until(lambda r=round_: completed() >= 20 * r, 60, f"{20 * round_} completed jobs")
        runner.send(signal.SIGKILL)
        runner.wait()
    start_runner("--count", "4", "--queue", "work")
    wait_until(lambda: completed() == total, 60, "every job to complete")

    made = Counter(job.env["QUEUECTL_EVENT_JOB"] for job in hook_jobs(queue))
    assert made == {f"j{n}": 1 for n in range(total)}


def test_hook_list_and_remove(cli: Cli) -> None:
    ok(cli("hook", "add", "b", "--on", "dead", "--command", "notify-send dead"))
    ok(cli("hook", "add", "a", "--on", "cancelled,completed", "--queue", "q", "-c", "true"))
    listed = ok(cli("hook", "list"))
    assert "notify-send dead" in listed
    assert "completed,cancelled" in listed

    hooks = json.loads(ok(cli("hook", "list", "--json")))
    assert [(h["name"], h["on"], h["queue"]) for h in hooks] == [
        ("a", ["completed", "cancelled"], "q"),
        ("b", ["dead"], None),
    ]
    ok(cli("hook", "remove", "a"))
    assert refused(cli("hook", "remove", "a"), 1) == "error: no hook 'a'"
    assert [h["name"] for h in json.loads(ok(cli("hook", "list", "--json")))] == ["b"]
    for bad in (
        ["--on", "finished", "-c", "true"],
        ["--on", "dead"],
        ["--on", "dead", "-c", "true", "--after", "x"],
        ["--on", "dead", "-c", "true", "--id", "x"],
    ):
        refused(cli("hook", "add", "c", *bad), 2)
    assert len(json.loads(ok(cli("hook", "list", "--json")))) == 1
