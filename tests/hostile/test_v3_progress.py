"""Progress reports attacked from inside a job: a report that no store can hold, a progress file
that is no file, reports from an attempt that is over, malformed reports, and many reports in
a burst (the last one is what stays)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from tests.hostile.conftest import Shared
from tests.support import fake_runner
from tests.support.cli import QUEUECTL, assert_clean_error, run
from tests.support.runners import wait_until

Cli = Callable[..., subprocess.CompletedProcess[str]]
Q = f'"{QUEUECTL}"'  # jobs have the runner's PATH, which need not hold the virtualenv's bin


def progress(queue: Queue, job_id: str) -> dict[str, Any] | None:
    report: dict[str, Any] | None = queue.get(job_id).to_dict()["progress"]
    return report


def test_reports_with_nul_and_terminal_controls_are_recorded_as_plain_text(
    shared: Shared, tmp_path: Path
) -> None:
    """A NUL in a progress file's last line once ended the runner on PostgreSQL (no text there
    holds one); controls and styles would reach every terminal that shows the job."""
    go = tmp_path / "go"
    by_file = shared.queue.enqueue(
        f"printf '1/2 a\\000b\\033[31mred\\033[0m\\n' > \"$QUEUECTL_PROGRESS_FILE\";"
        f" until [ -e {go} ]; do sleep 0.05; done",
        max_retries=0,
    ).id
    by_command = shared.queue.enqueue(
        f"{Q} progress 3/4 \"$(printf 'x\\033]0;title\\007y\\tz')\" || exit 9;"
        f" until [ -e {go} ]; do sleep 0.05; done",
        max_retries=0,
    ).id
    try:
        wait_until(lambda: progress(shared.queue, by_file), 20, "the file's report")
        wait_until(lambda: progress(shared.queue, by_command), 20, "the command's report")
    finally:
        go.touch()
    shared.finished(by_file, by_command)
    assert shared.runner.poll() is None, shared.log.read_text()
    assert progress(shared.queue, by_file) == {
        "done": 1,
        "total": 2,
        "percent": 50.0,
        "message": "abred",
        "eta_s": progress(shared.queue, by_file)["eta_s"],  # type: ignore[index]
    }
    message = progress(shared.queue, by_command)["message"]  # type: ignore[index]
    assert message.isprintable(), repr(message)
    assert message.startswith("x"), repr(message)
    assert message.endswith("y z"), repr(message)
    assert shared.queue.get(by_file).state == "completed"
    assert shared.queue.get(by_command).state == "completed"


def test_a_burst_of_reports_leaves_the_last_one(shared: Shared, tmp_path: Path) -> None:
    go = tmp_path / "go"
    wait = f"until [ -e {go} ]; do sleep 0.05; done"
    by_file = shared.queue.enqueue(
        'for i in $(seq 1 500); do echo "$i/500 step $i" >> "$QUEUECTL_PROGRESS_FILE"; done;' + wait
    ).id
    by_command = shared.queue.enqueue(
        f"{Q} progress 1/3 a && {Q} progress 2/3 b && {Q} progress 3/3 last;" + wait
    ).id
    try:
        wait_until(
            lambda: (progress(shared.queue, by_file) or {}).get("done") == 500, 20, "500/500"
        )
        wait_until(
            lambda: (progress(shared.queue, by_command) or {}).get("message") == "last", 20, "3/3"
        )
    finally:
        go.touch()
    shared.finished(by_file, by_command)
    assert progress(shared.queue, by_file)["message"] == "step 500"  # type: ignore[index]
    assert progress(shared.queue, by_command)["done"] == 3  # type: ignore[index]


def _report(target: str, job_id: str, token: int, *words: str) -> subprocess.CompletedProcess[str]:
    env = {"QUEUECTL_JOB_ID": job_id, "QUEUECTL_CLAIM_TOKEN": str(token)}
    return run(["progress", *words], target, env=env)  # type: ignore[no-any-return]


def test_a_report_from_an_attempt_that_is_over_changes_nothing(queue: Queue, target: str) -> None:
    job = queue.enqueue("true", queue="prog", max_retries=1).id
    store = queue._store
    fake_runner.register_live(store)
    [first] = fake_runner.claims(store, 1, ["prog"])
    assert _report(target, job, first.token, "1/4", "first").returncode == 0
    fake_runner.settle(store, job, 1, token=first.token, rules=True)
    assert queue.get(job).state == "failed"
    # between attempts, and in the next one, the first attempt's token records nothing
    assert_clean_error(_report(target, job, first.token, "2/4"), 1, "no longer")
    queue.requeue(job)  # its retry now rather than after the backoff
    assert [c.id for c in fake_runner.claims(store, 1, ["prog"])] == [job]
    job_now = queue.get(job)
    assert job_now.state == "processing"
    assert progress(queue, job) is None
    assert_clean_error(_report(target, job, first.token, "3/4", "stale"), 1, "no longer")
    assert progress(queue, job) is None
    assert progress(queue, job) is None


@pytest.mark.backends("sqlite")  # refused before the store is read
def test_malformed_reports_are_refused_and_keep_the_last_good_one(
    queue: Queue, target: str
) -> None:
    job = queue.enqueue("true", queue="prog").id
    fake_runner.register_live(queue._store)
    [claim] = fake_runner.claims(queue._store, 1, ["prog"])
    assert _report(target, job, claim.token, "2/4", "half").returncode == 0
    before = progress(queue, job)
    for words in (
        [""],
        ["1/0"],
        ["3/2"],
        ["101%"],
        ["--", "-1/2"],
        ["nan%"],
        ["9" * 400 + "/" + "9" * 401],
    ):
        assert_clean_error(_report(target, job, claim.token, *words), 2, "progress")
    assert progress(queue, job) == before
    outside = run(["progress", "1/2"], target)
    assert_clean_error(outside, 2, "inside a job")


@pytest.mark.backends("sqlite")  # the runner's own read, whatever the store
def test_a_progress_file_that_is_a_fifo_does_not_freeze_the_runner(
    queue: Queue, start_runner: Callable[..., Any], tmp_path: Path
) -> None:
    made, go = tmp_path / "made", tmp_path / "go"
    fifo = queue.enqueue(
        'rm -f "$QUEUECTL_PROGRESS_FILE"; mkfifo "$QUEUECTL_PROGRESS_FILE";'
        f' echo "$QUEUECTL_PROGRESS_FILE" > {made}.tmp; mv {made}.tmp {made}; n=0;'
        f" until [ -e {go} ]; do"
        f'  if [ -e {tmp_path}/ping$n ]; then echo "pong$n"; n=$((n + 1)); fi; sleep 0.05;'
        " done"
    ).id
    start_runner("-n", "2")
    wait_until(made.exists, 20, "the FIFO")
    path = made.read_text().strip()
    try:
        # The runner syncs live output and reads progress files on the same housekeeping
        # tick: three answers synced one after another span a read of the FIFO in between.
        for n in range(3):
            (tmp_path / f"ping{n}").touch()
            pong = f"pong{n}".encode()
            wait_until(lambda pong=pong: pong in queue.output(fifo), 15, pong.decode())
        after = queue.enqueue("echo after").id
        wait_until(lambda: queue.get(after).state == "completed", 15, "the next job to run")
    finally:
        go.touch()
        # a reader blocked on the FIFO (the runner) is let go by a writer that opens and leaves
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
    wait_until(lambda: queue.get(fifo).finished, 20, "the FIFO job to end")
