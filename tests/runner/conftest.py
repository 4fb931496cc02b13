"""The runner suite's fixtures: real runners, tagged processes and the CLI (tests/support)."""

from __future__ import annotations

from tests.support.runners import cli, process_env, start_runner, tag

__all__ = ["cli", "process_env", "start_runner", "tag"]
