"""Helpers for the workflow suite: the runner suite's real runners, tagged CLI and waits, plus
assertions on job states and refusals.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from queuectl import Queue
from tests.support.runners import (  # noqa: F401 - fixtures used by this folder's tests
    RunnerProcess,
    cli,
    process_env,
    start_runner,
    tag,
    wait_until,
)

Cli = Callable[..., subprocess.CompletedProcess[str]]


def states(queue: Queue, *job_ids: str) -> dict[str, str]:
    return {job_id: queue.get(job_id).state for job_id in job_ids}


def all_in(queue: Queue, state: str, *job_ids: str) -> Callable[[], bool]:
    """A predicate: every named job is in `state`."""
    return lambda: all(s == state for s in states(queue, *job_ids).values())


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a command that must have succeeded."""
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The one error line of a command that must have been refused with `code`."""
    assert result.returncode == code, f"exit {result.returncode} (want {code}): {result.stderr}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def cli_json(cli: Cli) -> Callable[..., Any]:  # noqa: F811 - the fixture imported above
    """`cli_json("queue", "list")`: the parsed output of a read command run with --json."""

    def call(*args: str) -> Any:
        return json.loads(ok(cli(*args, "--json")))

    return call
