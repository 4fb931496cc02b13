"""Batches and arrays under real runners on both stores: a batch's concurrency limit held by
several runners of several workers and after one is SIGKILLed, `wait --batch` exit codes, and
the CLI's array forms."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from tests.support.runners import alive
from tests.workflow.conftest import Cli, ok, wait_until

#: A job that notes, as it starts, how many jobs of its array run (its own marker counted; a
#: marker whose process is gone, of a job killed with its runner, is not), then runs a while:
#: the notes' maximum is at least what ran at once. A zombie is gone too: a killed runner's
#: shell may touch its marker after the test looked, and die unreaped (no init reaps here).
OVERLAP = (
    "touch {dir}/$$; n=0; for f in {dir}/*; do "
    "case $(cut -d' ' -f3 /proc/${{f##*/}}/stat 2>/dev/null) in ''|Z|X) ;; *) n=$((n+1)) ;; esac; "
    "done; echo $n >> {log}; sleep {s}; rm {dir}/$$"
)


def _overlaps(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def test_a_batch_limit_holds_under_two_runners_of_four_workers(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    running, log = tmp_path / "running", tmp_path / "overlap.log"
    running.mkdir()
    command = OVERLAP.format(dir=running, log=log, s="0.3")
    ok(cli("enqueue", "--array", "1-16%3", "--id", "arr", "--command", command))
    free = [queue.enqueue("sleep 0.2").id for _ in range(4)]  # others run beside them
    start_runner("--count", "4")
    start_runner("--count", "4")
    peak = 0
    for _ in range(2000):
        got = queue.batch("arr")
        peak = max(peak, got["counts"]["processing"])
        if got["finished"]:
            break
    wait_until(lambda: queue.batch("arr")["completed"], 60, "the array to complete")
    assert all(queue.get(i).state == "completed" for i in free)
    assert peak <= 3
    assert max(_overlaps(log)) <= 3
    assert max(_overlaps(log)) >= 2  # the limit, not a single worker, held them back
    assert queue.batch("arr")["counts"]["completed"] == 16


def test_a_batch_limit_holds_after_a_runner_is_sigkilled(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    queue.set_config("lease_seconds", 2)
    running, log = tmp_path / "running", tmp_path / "overlap.log"
    running.mkdir()
    command = OVERLAP.format(dir=running, log=log, s="0.5")
    ok(cli("enqueue", "--array", "1-12%2", "--id", "arr", "--command", command))
    doomed = start_runner("--count", "4")
    wait_until(lambda: queue.batch("arr")["counts"]["processing"] == 2, 20, "two to run")
    doomed.send(signal.SIGKILL)
    doomed.wait()
    # Its jobs' processes die with it (the watchdog's part, not the batch's): once they are
    # gone, what runs at once is what the claims allowed.
    wait_until(lambda: not [p for p in running.iterdir() if alive(int(p.name))], 20, "its jobs")
    for stale in running.iterdir():  # their markers (a zombie still answers kill -0)
        stale.unlink()
    start_runner("--count", "4")
    peak = 0
    while not queue.batch("arr")["finished"]:
        peak = max(peak, queue.batch("arr")["counts"]["processing"])
    got = queue.batch("arr")
    assert got["done"] == 12
    assert got["counts"]["completed"] + got["counts"]["dead"] == 12
    assert peak <= 2
    # the killed runner's jobs were killed with it: what ran at once never passed the limit
    assert max(_overlaps(log)) <= 2


@pytest.mark.parametrize(
    ("commands", "code"),
    [(["true", "true"], 0), (["true", "exit 3"], 1)],
)
def test_wait_batch_exit_codes(
    cli: Cli,
    queue: Queue,
    start_runner: Callable[..., Any],
    commands: list[str],
    code: int,
) -> None:
    for command in commands:
        ok(cli("enqueue", "--batch", "b", "--max-retries", "0", "--command", command))
    start_runner("--count", "2")
    waited = cli("wait", "--batch", "b", "--timeout", "30s")
    assert waited.returncode == code, waited.stderr


def test_wait_batch_times_out_and_refuses_an_unknown_batch(cli: Cli) -> None:
    ok(cli("enqueue", "--batch", "b", "--command", "true"))
    timed_out = cli("wait", "--batch", "b", "--timeout", "0.3s")
    assert timed_out.returncode == 124
    unknown = cli("wait", "--batch", "nope")
    assert unknown.returncode != 0
    assert unknown.stderr.count("\n") == 1


def test_a_cancelled_job_makes_wait_batch_fail(cli: Cli, queue: Queue) -> None:
    ok(cli("enqueue", "--batch", "b", "--command", "true", "--id", "one"))
    ok(cli("cancel", "--batch", "b"))
    assert cli("wait", "--batch", "b").returncode == 1


@pytest.mark.parametrize(
    ("spec", "ids"),
    [
        ("1-3", ["a.1", "a.2", "a.3"]),
        ("0-4:2", ["a.0", "a.2", "a.4"]),
        ("1,5,9", ["a.1", "a.5", "a.9"]),
        ("1-2%1", ["a.1", "a.2"]),
    ],
)
def test_cli_arrays_print_their_ids_and_run_with_their_index(
    cli: Cli,
    queue: Queue,
    start_runner: Callable[..., Any],
    tmp_path: Path,
    spec: str,
    ids: list[str],
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    made = ok(
        cli(
            "enqueue",
            "--array",
            spec,
            "--id",
            "a",
            "--",
            "sh",
            "-c",
            f"touch {out}/$QUEUECTL_ARRAY_INDEX",
        )
    )
    assert made.split() == ids
    start_runner("--count", "2")
    assert cli("wait", "--batch", "a", "--timeout", "30s").returncode == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(i.split(".")[1] for i in ids)
    shown = json.loads(ok(cli("batch", "show", "a", "--json")))
    assert (shown["done"], shown["total"], shown["completed"]) == (len(ids), len(ids), True)
    assert shown["first_start"] is not None
    assert shown["last_end"] is not None
    assert sorted(job["id"] for job in shown["jobs"]) == sorted(ids)


@pytest.mark.parametrize("spec", ["1-", "x", "3-1", "1-5%0", "1-4:0"])
def test_a_bad_array_spec_is_one_line_and_exit_2(cli: Cli, queue: Queue, spec: str) -> None:
    refused = cli("enqueue", "--array", spec, "--command", "true")
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert refused.stderr.startswith("error:")
    assert queue.list() == []


def test_batch_set_and_list(cli: Cli) -> None:
    ok(cli("enqueue", "--array", "1-2%1", "--id", "a", "--command", "true"))
    ok(cli("batch", "set", "a", "--concurrency", "5"))
    listed = json.loads(ok(cli("batch", "list", "--json")))
    assert [(b["name"], b["concurrency"], b["total"]) for b in listed] == [("a", 5, 2)]
    ok(cli("batch", "set", "a", "--concurrency", "none"))
    assert json.loads(ok(cli("batch", "list", "--json")))[0]["concurrency"] is None
    assert cli("batch", "set", "a", "--concurrency", "0").returncode == 2
    assert cli("batch", "set", "nope", "--concurrency", "1").returncode != 0


def test_a_batch_in_a_queue_with_default_retries_finishes_and_lets_its_dependant_run(
    queue: Queue, start_runner: Callable[..., Any]
) -> None:
    # A batch job's end is seen by the store's settlement, wherever its retry rules come from.
    queue.set_queue_defaults("q", max_retries=1)
    queue.enqueue_many(
        [{"id": f"b{i}", "command": "true", "queue": "q", "batch": "b"} for i in range(3)]
    )
    after = queue.enqueue("true", id="after", after_batch="b").id
    start_runner()
    wait_until(lambda: queue.get(after).state == "completed", 30, "the job after the batch")
    assert queue.batch("b")["completed"]
