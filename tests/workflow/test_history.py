"""History, requeue, acting on many jobs and retention through the real CLI and runners
(SPEC 9.3 to 9.5)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from queuectl import Queue
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until


def test_show_and_logs_keep_every_attempt(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli, cli_json: Callable[..., Any]
) -> None:
    ok(cli("config", "set", "backoff_base", "1"))
    # the first attempt fails loudly, the second succeeds printing nothing
    script = 'if [ "$QUEUECTL_ATTEMPT" = 1 ]; then echo boom; exit 3; fi'
    ok(cli("enqueue", "--id", "flaky", "--max-retries", "2", "--command", script))
    start_runner()
    wait_until(all_in(queue, "completed", "flaky"), 20, "flaky to complete")

    shown = cli_json("show", "flaky")
    history = shown["history"]
    assert [(a["attempt"], a["exit_code"], a["error"]) for a in history] == [
        (1, 3, "exit code 3: boom"),
        (2, 0, None),
    ]
    assert all(a["host"] and a["runner"] and a["finished_at"] for a in history)
    assert shown["last_error"] is None
    assert ok(cli("logs", "flaky")) == "", "the silent second attempt shows the first's output"
    assert ok(cli("logs", "flaky", "--attempt", "1")) == "boom\n"
    assert json.loads(ok(cli("logs", "flaky", "--json", "--attempt", "1"))) == {
        "id": "flaky",
        "attempt": 1,
        "output": "boom\n",
        "truncated": False,
    }
    table = ok(cli("show", "flaky"))
    assert "attempts" in table
    assert "exit code 3" in table
    refused(cli("logs", "flaky", "--attempt", "9"), 1)


def test_output_cut_at_the_limit_starts_with_a_marker(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli
) -> None:
    ok(cli("config", "set", "output_limit", "10"))
    ok(cli("enqueue", "--id", "loud", "--command", "printf 'aaaaaaaaaabbbbbbbbbb'"))
    start_runner()
    wait_until(all_in(queue, "completed", "loud"), 20, "loud to complete")
    assert ok(cli("logs", "loud")) == "[queuectl: 10 earlier bytes dropped]\nbbbbbbbbbb"
    shown = json.loads(ok(cli("logs", "loud", "--json")))
    assert shown["truncated"] is True


def test_requeue_runs_finished_jobs_again(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli
) -> None:
    ok(cli("enqueue", "--id", "once", "--command", "echo $QUEUECTL_ATTEMPT"))
    ok(cli("enqueue", "--id", "idle", "--queue", "parked", "--command", "true"))
    start_runner("--queue", "default")
    wait_until(all_in(queue, "completed", "once"), 20, "once to complete")
    assert refused(cli("requeue", "idle"), 1).startswith("error: job 'idle' is pending")
    assert ok(cli("requeue", "once")) == "once\n"
    wait_until(lambda: len(queue.history("once")) == 2, 20, "the second run")
    wait_until(all_in(queue, "completed", "once"), 20, "once to complete again")
    assert queue.get("once").attempts == 1


def test_cancel_a_queue_or_everything(queue: Queue, cli: Cli) -> None:
    for n in range(3):
        ok(cli("enqueue", "--queue", "batch", "--command", f"echo {n}"))
    ok(cli("enqueue", "--id", "other", "--command", "true"))
    result = cli("cancel", "--queue", "batch")
    assert result.returncode == 0
    assert "cancelled 3 jobs" in result.stderr
    assert queue.get("other").state == "pending"
    assert "cancelled 1 job" in cli("cancel", "--all").stderr
    assert queue.count("pending") == 0
    assert refused(cli("cancel", "other", "--all"))
    assert refused(cli("cancel"))


def test_list_takes_several_states_and_queues_and_says_when_it_stopped(
    queue: Queue, cli: Cli
) -> None:
    for n in range(5):
        queue.enqueue("true", id=f"a{n}", queue="a")
    queue.enqueue("true", id="b0", queue="b")
    queue.enqueue("true", id="c0", queue="c")
    queue.cancel("a0")
    listed = json.loads(ok(cli("list", "--queue", "b", "--queue", "c", "--json")))
    assert sorted(job["id"] for job in listed) == ["b0", "c0"]
    listed = json.loads(
        ok(cli("list", "--state", "cancelled", "--state", "pending", "-q", "a", "--json"))
    )
    assert len(listed) == 5
    result = cli("list", "--limit", "2")
    assert result.returncode == 0
    assert "2 of 7 shown; --limit 0 for all" in result.stderr
    assert "shown" not in cli("list", "--limit", "7").stderr


def test_dlq_retry_of_one_queue(queue: Queue, cli: Cli) -> None:
    for name in ("x", "y"):
        queue.enqueue("false", id=name, queue=name, max_retries=0)
    store = queue._store
    for claim in store.finish_and_claim("r", [], 2, None, 30).claims:
        from queuectl.lifecycle import Outcome

        store.finish_and_claim(
            "r", [Outcome(claim.id, 1, 1, None, 5, token=claim.token)], 0, None, 30
        )
    assert ok(cli("dlq", "retry", "--queue", "x")) == "x\n"
    assert (queue.get("x").state, queue.get("y").state) == ("pending", "dead")


def test_finished_jobs_past_their_retention_are_deleted_by_runners(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli, target: str
) -> None:
    ok(cli("config", "set", "retain_completed", "1s"))
    ok(cli("enqueue", "--id", "short", "--command", "true"))
    ok(cli("enqueue", "--id", "kept", "--max-retries", "0", "--command", "exit 1"))
    now_minute = queue.now_ms() // 60_000
    old_minute = now_minute - 180  # what ended 3 hours ago: no read looks that far back
    _execute(
        target,
        f"INSERT INTO finished_minutes VALUES ({old_minute}, 'default', 'completed', 10, 0, 1, 5)",
    )
    assert old_minute in queue.finished_per_minute(0)
    start_runner()
    wait_until(lambda: queue.find("short") is None, 40, "the completed job to be deleted")
    assert queue.get("kept").state == "dead", "dead jobs are kept (retain_dead 0: forever)"
    recent = queue.finished_per_minute(0)
    assert old_minute not in recent, "the runner forgets minutes older than any read"
    assert sum(m.get("completed", 0) for m in recent.values()) == 1, "deleted, still counted"
    ok(cli("enqueue", "--id", "short", "--delay", "1h", "--command", "true"))
    assert queue.history("short") == [], "a new job with the id starts with no history"


def test_logs_follow_shows_each_attempt_once_and_says_when_the_next_begins(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli
) -> None:
    ok(cli("config", "set", "backoff_base", "1"))
    script = 'echo "try $QUEUECTL_ATTEMPT"; sleep 0.3; [ "$QUEUECTL_ATTEMPT" = 2 ]'
    ok(cli("enqueue", "--id", "twice", "--max-retries", "1", "--command", script))
    start_runner()
    followed = cli("logs", "twice", "--follow", timeout=30)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout == "try 1\ntry 2\n"
    assert "--- attempt 2" in followed.stderr


def test_logs_follow_exits_1_when_the_job_ends_dead(
    queue: Queue, start_runner: Callable[..., Any], cli: Cli
) -> None:
    ok(cli("enqueue", "--id", "doomed", "--max-retries", "0", "--command", "echo bye; exit 4"))
    start_runner()
    followed = cli("logs", "doomed", "--follow", timeout=30)
    assert followed.returncode == 1
    assert followed.stdout == "bye\n"
    assert "doomed ended dead" in followed.stderr


def _execute(target: str, sql: str) -> None:
    """One statement straight into the store's database, committed."""
    if target.startswith("postgresql"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(sql)
        return
    import sqlite3

    with sqlite3.connect(target) as conn:
        conn.execute(sql)
    conn.close()
