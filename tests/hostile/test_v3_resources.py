"""Resource limits attacked from inside jobs and from the command line: an out-of-memory error
is said only of a kill the kernel's OOM killer made (not of any SIGKILL, nor missed when the
shell carries on), a runner that enforces nothing leaves limited jobs with `explain` saying
why, and bad limits are refused with one line and nothing stored."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from queuectl import Queue
from tests.hostile.conftest import Shared
from tests.support.cli import assert_clean_error
from tests.support.runners import wait_until

Cli = Callable[..., subprocess.CompletedProcess[str]]
#: Touches every page of N MiB (a peak no limit below it lets through).
GROW = "python3 -c \"x = bytearray({mib} << 20); x[::4096] = b'a' * (len(x) // 4096)\""


def test_out_of_memory_is_said_of_the_kernels_kills_only(shared: Shared) -> None:
    [runner] = shared.json("worker", "list")
    if "memory" not in runner["enforces"]:
        pytest.skip(f"this host's runner enforces only {runner['enforces']}")
    q = shared.queue
    jobs = {
        # SIGKILLed by itself, under a limit it never reached: no out of memory
        "self-kill": q.enqueue("kill -9 $$", memory="1G", max_retries=0).id,
        # the same without a limit
        "self-kill-free": q.enqueue("kill -9 $$", max_retries=0).id,
        # a child killed by the OOM killer while the shell ends well: the attempt failed
        "child": q.enqueue(
            GROW.format(mib=256) + "; echo carried on; exit 0", memory="64M", max_retries=0
        ).id,
        # the shell itself: killed, and retried like any failure
        "shell": q.enqueue("exec " + GROW.format(mib=256), memory="64M", max_retries=1).id,
        # under its limit: fine
        "fits": q.enqueue(GROW.format(mib=16), memory="256M", max_retries=0).id,
    }
    shared.finished(*jobs.values(), timeout=60)
    got = {name: q.get(job_id) for name, job_id in jobs.items()}
    assert got["self-kill"].state == "dead"
    assert got["self-kill"].last_error == "exit code 137 (killed by signal 9 (KILL))"
    assert got["self-kill-free"].last_error == "exit code 137 (killed by signal 9 (KILL))"
    assert got["child"].state == "dead"
    assert got["child"].last_error == "out of memory (limit 64 MiB)"
    assert got["shell"].state == "dead"
    assert [a.error for a in q.history(jobs["shell"])] == ["out of memory (limit 64 MiB)"] * 2
    assert got["fits"].state == "completed", got["fits"].last_error
    assert shared.runner.poll() is None


def test_a_runner_without_cgroups_leaves_limited_jobs_and_explain_names_the_limit(
    queue: Queue, cli: Cli, start_runner: Callable[..., Any]
) -> None:
    queue.set_queue("lim", memory="1G", cpus=2)
    by_queue = queue.enqueue("echo ran", queue="lim").id
    own = queue.enqueue("echo ran", queue="free", max_procs=10).id
    free = queue.enqueue("echo ran", queue="free").id
    start_runner("-n", "2", env={"QUEUECTL_NO_CGROUP": "1"})
    wait_until(lambda: queue.get(free).state == "completed", 20, "the job without limits")
    [runner] = json.loads(cli("worker", "list", "--json").stdout)
    assert runner["enforces"] == []
    for job_id, named in ((by_queue, ["memory 1 GiB", "cpus 2"]), (own, ["max_procs 10"])):
        assert queue.get(job_id).state == "pending"
        explained = json.loads(cli("explain", job_id, "--json").stdout)
        assert explained["reason"] == "no_runner_enforces_limits", explained
        for words in named:
            assert words in explained["message"], explained
    # the queue's defaults are read when an attempt would start: cleared, the job runs
    queue.set_queue("lim", memory=None, cpus=None)
    wait_until(lambda: queue.get(by_queue).state == "completed", 20, "the job to run")
    assert queue.get(own).state == "pending"


@pytest.mark.backends("sqlite")  # refused before the store is written
def test_bad_limits_are_refused_in_one_line_and_nothing_is_stored(cli: Cli, queue: Queue) -> None:
    for option, value in [
        ("--memory", "0"),
        ("--memory", "1Q"),
        ("--memory", "99999999999999999999T"),
        ("--cpus", "0"),
        ("--cpus", "nan"),
        ("--cpus", "1e400"),
        ("--max-procs", "0"),
        ("--max-procs", "99999999999999999999"),
    ]:
        assert_clean_error(cli("enqueue", option, value, "-c", "true"), 2)
    for field, value in [("memory", True), ("memory", 1.5), ("cpus", False), ("max_procs", 2**70)]:
        body = json.dumps({"command": "true", field: value})
        assert_clean_error(cli("enqueue", body), 2, field)
    assert queue.list() == []
