"""Editing a job before it runs: atomic against claims, validated as enqueue validates, noted
in the job; on both stores."""

from __future__ import annotations

import os
import pty
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError, WrongStateError
from queuectl.store import Claim
from tests.support.clock import FakeClock
from tests.support.runners import QUEUECTL
from tests.workflow.conftest import Cli, all_in, refused, wait_until

LEASE_S = 30.0


@pytest.fixture
def fake(target: str) -> Iterator[tuple[Queue, FakeClock]]:
    """A queue on the fake clock; its store claims as a runner would."""
    clock = FakeClock()
    opened = Queue(target, clock)
    yield opened, clock
    opened.close()


def claim(queue: Queue, queues: list[str] | None = None) -> list[Claim]:
    return queue._store.finish_and_claim("r1", [], 10, queues, LEASE_S).claims


def test_an_edit_changes_what_the_next_attempt_runs(fake: tuple[Queue, FakeClock]) -> None:
    queue, _ = fake
    queue.enqueue("echo old", id="job", env={"A": "1"}, lock="x", timeout=5)
    dep = queue.enqueue("true", id="dep", queue="other")
    edited = queue.edit(
        "job",
        command="echo new",
        priority=7,
        queue="night",
        env={"B": "2"},
        timeout="1m",
        max_retries=0,
        lock=None,
        depends_on=[dep.id],
        by="alice",
    )
    assert (edited.command, edited.priority, edited.queue, edited.lock) == (
        "echo new",
        7,
        "night",
        None,
    )
    assert edited.env == {"A": "1", "B": "2"}
    [note] = edited.edits
    assert note["by"] == "alice"
    assert note["fields"] == sorted(
        ["command", "priority", "queue", "env", "timeout", "max_retries", "lock", "depends_on"]
    )
    assert [c.id for c in claim(queue, ["other"])] == ["dep"]  # waits for dep now
    queue._store.finish_and_claim("r1", [_done("dep", claim_token(queue, "dep"))], 0, None, LEASE_S)
    assert claim(queue, ["default"]) == []  # it moved to `night`
    [got] = claim(queue, ["night"])
    assert (got.command, got.priority, got.env, got.timeout, got.max_retries) == (
        "echo new",
        7,
        {"A": "1", "B": "2"},
        60.0,
        0,
    )
    assert queue.get("job").state == "processing"
    with pytest.raises(WrongStateError, match="processing"):
        queue.edit("job", priority=1)


def claim_token(queue: Queue, job_id: str) -> int:
    token = queue.history(job_id)[-1].token
    assert token is not None
    return token


def _done(job_id: str, token: int) -> Any:
    from queuectl.lifecycle import Outcome

    return Outcome(job_id, 1, 0, None, 5, token=token)


def test_an_edit_to_a_later_start_or_a_bad_value_leaves_the_job_as_it_was(
    fake: tuple[Queue, FakeClock],
) -> None:
    queue, clock = fake
    queue.enqueue("true", id="job")
    queue.enqueue("true", id="after", depends_on=["job"])
    before = queue.get("job")
    for bad in (
        {"priority": "high"},
        {"timeout": "soon"},
        {"command": ""},
        {"delay": "1s", "run_at": "2030-01-01T00:00:00Z"},
        {"depends_on": ["nope"]},
        {"depends_on": ["job"]},
        {"depends_on": ["after"]},  # `after` waits for `job`: a loop
        {"state": "completed"},
        {},
    ):
        with pytest.raises(InvalidInputError):
            queue.edit("job", **bad)
        assert queue.get("job") == before, bad
    queue.edit("job", delay="10s")
    assert claim(queue) == []
    clock.advance(11)
    assert [c.id for c in claim(queue)] == ["job"]


def test_an_edit_changes_or_clears_the_limits_a_runner_must_enforce(
    fake: tuple[Queue, FakeClock],
) -> None:
    queue, _ = fake
    queue.enqueue("true", id="job", memory="512M", cpus=1.5)
    before = queue.get("job")
    for bad in ({"memory": "lots"}, {"cpus": 0}, {"max_procs": -1}, {"max_procs": "x"}):
        with pytest.raises(InvalidInputError):
            queue.edit("job", **bad)
        assert queue.get("job") == before, bad
    edited = queue.edit("job", memory="1G", max_procs=64, cpus=None)
    assert (edited.memory, edited.cpus, edited.max_procs) == (1 << 30, None, 64)
    assert edited.edits[-1]["fields"] == ["cpus", "max_procs", "memory"]
    # A runner that enforces no memory limit may not take it until the limit is gone.
    store = queue._store
    no_memory = 2 | 4
    assert store.finish_and_claim("r1", [], 1, None, LEASE_S, enforces=no_memory).claims == []
    queue.edit("job", memory=None)
    [got] = store.finish_and_claim("r1", [], 1, None, LEASE_S, enforces=no_memory).claims
    assert (got.id, got.memory, got.cpus, got.max_procs) == ("job", None, None, 64)


def test_edit_from_the_cli_sets_and_clears_limits(cli: Cli, queue: Queue) -> None:
    job = queue.enqueue("true", queue="nowhere", memory="1G", cpus=2).id
    done = cli("edit", job, "--memory", "256M", "--cpus", "none", "--max-procs", "50")
    assert done.returncode == 0, done.stderr
    assert "cpus, max_procs, memory" in done.stderr
    got = queue.get(job)
    assert (got.memory, got.cpus, got.max_procs) == (256 << 20, None, 50)
    for bad in (["--memory", "huge"], ["--cpus", "0"], ["--max-procs", "many"]):
        assert "error:" in refused(cli("edit", job, *bad))
    assert queue.get(job) == got
    assert cli("edit", job, "--memory", "none").returncode == 0
    assert queue.get(job).memory is None


def test_edit_from_the_cli_refuses_with_one_line(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    job = queue.enqueue("sleep 30").id
    waiting = queue.enqueue("true", queue="later").id
    line = refused(cli("edit", waiting, "--priority", "many"))
    assert "priority" in line
    refused(cli("edit", waiting))  # no option, not a terminal
    start_runner()
    wait_until(all_in(queue, "processing", job), 15, "the long job to start")
    assert "processing" in refused(cli("edit", job, "--command", "true"), 1)
    result = cli("edit", waiting, "--command", "echo edited", "--queue", "default", "--env", "K=V")
    assert result.returncode == 0, result.stderr
    queue.cancel(job)
    wait_until(all_in(queue, "completed", waiting), 15, "the edited job to run")
    assert queue.output(waiting).decode().strip() == "edited"
    [note] = queue.get(waiting).edits
    assert note["fields"] == ["command", "env", "queue"]


def test_edit_alone_on_a_terminal_opens_the_editor_on_the_command(
    queue: Queue, process_env: dict[str, str], tmp_path: Path
) -> None:
    job = queue.enqueue("echo before", queue="nowhere").id
    editor = tmp_path / "editor"
    editor.write_text("#!/bin/sh\nsleep 0.05\nsed -i 's/before/after/' \"$1\"\n")
    editor.chmod(0o755)
    main, side = pty.openpty()
    process = subprocess.Popen(
        [QUEUECTL, "edit", job],
        stdin=side,
        stdout=side,
        stderr=side,
        env={**process_env, "EDITOR": str(editor), "VISUAL": str(editor)},
    )
    os.close(side)
    assert process.wait(30) == 0, _drain(main)
    os.close(main)
    assert queue.get(job).command == "echo after"


def _drain(fd: int) -> str:
    try:
        return os.read(fd, 65536).decode(errors="replace")
    except OSError:
        return ""


def test_edit_races_the_claim_of_a_running_runner(
    queue: Queue, start_runner: Callable[..., Any]
) -> None:
    """Each edit, sent as the runner wakes to claim its job, either finds it claimed (refused:
    the old job runs) or wins (the new one runs): never a mix of the two."""
    start_runner("--count", "4")
    outcomes: dict[str, bool] = {}
    # The pause before each edit sweeps the runner's claim; the sweep widens every 40 jobs
    # until both outcomes have been seen, since a loaded machine claims later.
    for n in range(320):
        if n >= 40 and len(set(outcomes.values())) == 2:
            break
        job_id = queue.enqueue('echo "old-$V"', env={"V": "old"}).id
        time.sleep(0.0005 * (n % 8) * 2 ** (n // 40))
        try:
            queue.edit(job_id, command='echo "new-$V"', env={"V": "new"})
            outcomes[job_id] = True
        except WrongStateError:
            outcomes[job_id] = False
    wait_until(all_in(queue, "completed", *outcomes), 60, "every job to run")
    for job_id, edited in outcomes.items():
        said = queue.output(job_id).decode().strip()
        assert said == ("new-new" if edited else "old-old"), job_id
    assert any(outcomes.values()), "every edit came too late: no race"
    assert not all(outcomes.values()), "every edit came first: no race"
