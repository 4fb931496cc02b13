"""--silence-timeout with real runners: an attempt silent that long is killed as a timeout,
one that keeps writing runs on, and the option is stored and validated."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from queuectl import Queue
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until


def test_a_silent_attempt_is_killed(queue: Queue, start_runner: Callable[..., Any]) -> None:
    start_runner()
    job = queue.enqueue(
        "echo a; sleep 0.4; echo b; sleep 0.4; echo c; sleep 30",
        silence_timeout="1s",
        max_retries=0,
    ).id
    wait_until(all_in(queue, "dead", job), 20, "the silent job to be killed")
    found = queue.get(job)
    assert found.last_error == "no output for 1s"
    assert found.duration_ms is not None
    assert 1700 <= found.duration_ms < 6000  # a second after its last line, not before
    assert queue.output(job).split() == [b"a", b"b", b"c"]


def test_output_keeps_an_attempt_alive(queue: Queue, start_runner: Callable[..., Any]) -> None:
    start_runner("--count", "2")
    chatty = queue.enqueue(
        "for i in 1 2 3 4 5 6 7 8; do echo $i; sleep 0.4; done", silence_timeout="1s"
    ).id
    # Output from a grandchild counts as well: it writes to the same pipe.
    nested = queue.enqueue(
        "sh -c 'for i in 1 2 3 4 5 6; do echo $i; sleep 0.4; done'", silence_timeout="1s"
    ).id
    quiet = queue.enqueue("sleep 2").id  # no silence timeout: never killed for it
    wait_until(all_in(queue, "completed", chatty, nested, quiet), 30, "the jobs")
    assert queue.get(chatty).attempts == 1


def test_cli_silence_timeout(cli: Cli, queue: Queue) -> None:
    job = json.loads(ok(cli("enqueue", "--silence-timeout", "2m", "--json", "-c", "true")))[0]
    assert job["silence_timeout"] == 120
    assert json.loads(ok(cli("enqueue", "--json", "-c", "true")))[0]["silence_timeout"] is None
    assert "silence_timeout" in refused(cli("enqueue", "--silence-timeout", "soon", "-c", "true"))
    assert "silence_timeout" in refused(cli("enqueue", "--silence-timeout", "0", "-c", "true"))
    assert len(queue.list()) == 2
