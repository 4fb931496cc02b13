"""Hold, release and edit attacked from outside: bad input and lost races leave a job exactly
as it was (one line, the documented exit code), `$EDITOR` that fails or empties the command
changes nothing; and the forms promised for version 3 that are missing (strict xfails)."""

from __future__ import annotations

import os
import pty
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from queuectl.errors import InvalidInputError
from tests.support import fake_runner
from tests.support.cli import QUEUECTL, assert_clean_error

Cli = Callable[..., subprocess.CompletedProcess[str]]

#: (arguments of `edit`, the exit code): each refused, the job left as it was.
BAD_EDITS: list[tuple[list[str], int]] = [
    (["--priority", "99999999999999999999"], 2),
    (["--queue", "bad queue"], 2),
    (["--run-at", "notatime"], 2),
    (["--env", "=x"], 2),
    (["--max-retries", "101"], 2),
    (["--command", "   "], 2),
    (["--delay", "1s", "--run-at", "2030-01-01"], 2),
    (["--expires", "0"], 2),
    (["--expires", "2020-01-01T00:00:00Z"], 2),  # passed: the job could never run
    (["--after", "victim"], 2),  # itself
    # atomic: the valid change is not made either
    (["--priority", "5", "--after", "nosuch"], 2),
    (["--priority", "5", "--env", "NOEQ"], 2),
]


def snapshot(queue: Queue, job_id: str) -> dict[str, Any]:
    return queue.detail(job_id)


#: The refusals that read the store: the others are the same on any store.
STORE_EDITS = BAD_EDITS[-3:]


def test_edit_with_bad_input_leaves_the_job_as_it_was(cli: Cli, queue: Queue, target: str) -> None:
    queue.enqueue("echo old", id="victim", queue="nowhere", env={"A": "1"}, priority=1)
    before = snapshot(queue, "victim")
    for args, code in STORE_EDITS if target.startswith("postgresql:") else BAD_EDITS:
        assert_clean_error(cli("edit", "victim", *args), code)
    assert snapshot(queue, "victim") == before
    assert_clean_error(cli("edit", "nosuch", "--priority", "1"), 1, "nosuch")


def test_edit_and_hold_of_a_job_a_runner_just_claimed_change_nothing(
    cli: Cli, queue: Queue
) -> None:
    """The claim came first: the edit and the hold exit 1, the runner's attempt is still its
    own (its end is accepted), and it ran the command it was claimed with."""
    job = queue.enqueue("echo old", queue="claimed").id
    fake_runner.register_live(queue._store)
    [claim] = fake_runner.claims(queue._store, 1, ["claimed"])
    before = snapshot(queue, job)
    assert_clean_error(cli("edit", job, "--command", "echo new"), 1, "processing")
    assert_clean_error(cli("hold", job), 1)
    assert_clean_error(cli("release", job), 1)
    assert snapshot(queue, job) == before
    settled = fake_runner.settle(queue._store, job, 0, token=claim.token)
    assert settled is not None
    assert queue.get(job).state == "completed"
    assert queue.get(job).command == "echo old"
    assert not queue.get(job).held


def _in_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `queuectl ARGS` on a pseudo-terminal: its exit code and what it printed."""
    main, side = pty.openpty()
    process = subprocess.Popen(
        [QUEUECTL, *args], stdin=side, stdout=side, stderr=side, env=env, start_new_session=True
    )
    os.close(side)
    printed = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        printed += chunk
    os.close(main)
    return process.wait(30), printed.decode(errors="replace")


@pytest.mark.backends("sqlite")  # the editor's ways to fail; the store's part is tested above
def test_editor_that_fails_empties_the_command_or_loses_the_race_changes_nothing(
    queue: Queue, process_env: dict[str, str], tmp_path: Path
) -> None:
    job = queue.enqueue("echo old", queue="nowhere").id
    before = snapshot(queue, job)
    editors = {
        "fails": "exit 3",
        "empties": ': > "$1"',
        "blanks": 'printf "  \\n\\t\\n" > "$1"',
        "missing": None,
    }
    for name, body in editors.items():
        editor = tmp_path / name
        if body is not None:
            editor.write_text(f"#!/bin/sh\n{body}\n")
            editor.chmod(0o755)
        code, printed = _in_terminal(
            ["edit", job], {**process_env, "EDITOR": str(editor), "VISUAL": str(editor)}
        )
        lines = printed.strip().splitlines()
        assert code in (1, 2), (name, code, printed)
        assert len(lines) == 1, (name, printed)
        assert lines[0].startswith("error: "), (name, printed)
        assert snapshot(queue, job) == before, name
    # the job is cancelled while the editor is open: the edit exits 1, the cancel stands
    editor = tmp_path / "slow"
    editor.write_text(f'#!/bin/sh\n"{QUEUECTL}" cancel {job} >/dev/null 2>&1\necho new > "$1"\n')
    editor.chmod(0o755)
    code, printed = _in_terminal(
        ["edit", job], {**process_env, "EDITOR": str(editor), "VISUAL": str(editor)}
    )
    assert code == 1, printed
    assert "Traceback" not in printed
    assert queue.get(job).state == "cancelled"
    assert queue.get(job).command == "echo old"


@pytest.mark.backends("sqlite")  # refused before the store is written
def test_queue_defaults_refuse_bad_values_and_keep_the_old(cli: Cli, queue: Queue) -> None:
    assert cli("queue", "set", "dq", "--timeout", "5m", "--max-retries", "2").returncode == 0
    before = queue.queues()["dq"]
    for option, value in [
        ("--timeout", "-1"),
        ("--timeout", "1x"),
        ("--max-retries", "101"),
        ("--max-retries", "-1"),
        ("--memory", "0"),
        ("--memory", "1Q"),
        ("--cpus", "0"),
        ("--cpus", "nan"),
        ("--max-procs", "0"),
    ]:
        assert_clean_error(cli("queue", "set", "dq", option, value), 2)
    assert queue.queues()["dq"] == before


@pytest.mark.backends("sqlite")
def test_edit_changes_memory_and_cpus(cli: Cli, queue: Queue) -> None:
    job = queue.enqueue("true", queue="nowhere").id
    result = cli("edit", job, "--memory", "512M", "--cpus", "1.5")
    assert result.returncode == 0, result.stderr
    assert queue.get(job).memory == 512 << 20
    assert queue.get(job).cpus == 1.5
    queue.edit(job, memory="1G")
    assert queue.get(job).memory == 1 << 30


@pytest.mark.backends("sqlite")
def test_a_bad_expires_is_named_as_expires(cli: Cli, queue: Queue) -> None:
    job = queue.enqueue("true", queue="nowhere").id
    for command in (["edit", job], ["enqueue", "-c", "true"]):
        line = assert_clean_error(cli(*command, "--expires", "-1s"), 2)
        assert "--run-at" not in line, line


def test_an_expiry_already_past_is_refused(cli: Cli, queue: Queue) -> None:
    before = queue.status()["counts"]
    line = assert_clean_error(cli("enqueue", "--expires", "2020-01-01T00:00:00Z", "--", "true"), 2)
    assert "expires: 2020-01-01" in line, line
    assert "has passed" in line, line
    with pytest.raises(InvalidInputError):
        queue.enqueue_many(
            [{"command": "true"}, {"command": "true", "expires": "2020-01-01T00:00:00Z"}]
        )
    assert queue.status()["counts"] == before  # all or nothing


@pytest.mark.backends("sqlite")
def test_hold_and_release_a_batch(cli: Cli, queue: Queue) -> None:
    queue.enqueue_array("1-3", {"id": "hb", "command": "true", "queue": "nowhere"})
    other = queue.enqueue("true", queue="nowhere").id
    assert cli("hold", "--batch", "hb").returncode == 0
    assert all(j.held for j in queue.list(batch="hb"))
    assert not queue.get(other).held
    assert cli("release", "--batch", "hb").returncode == 0
    assert not any(j.held for j in queue.list(batch="hb"))


def test_edit_after_keeps_a_wait_for_a_batch(queue: Queue) -> None:
    queue.enqueue("true", queue="nowhere", batch="eb", held=True)
    done = queue.enqueue("true", queue="done-q").id
    fake_runner.run(queue._store, done, 0)
    job = queue.enqueue("true", queue="waits", after_batch=["eb"]).id
    queue.edit(job, depends_on=[done])
    fake_runner.register_live(queue._store)
    assert fake_runner.claims(queue._store, 1, ["waits"]) == []
    assert queue.explain(job)["reason"] == "waiting_for_dependency"
