"""Shell completion, as the README tells users to enable it (click's completion protocol)."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import QUEUECTL


def complete(words: str, cword: int) -> list[str]:
    env = {
        **os.environ,
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "_QUEUECTL_COMPLETE": "bash_complete",
    }
    result = subprocess.run([QUEUECTL], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    return [line.split(",", 1)[1] for line in result.stdout.splitlines()]


def test_bash_script_is_generated() -> None:
    env = {**os.environ, "_QUEUECTL_COMPLETE": "bash_source"}
    result = subprocess.run([QUEUECTL], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "_queuectl_completion" in result.stdout


def test_commands_and_subcommands_complete() -> None:
    assert complete("queuectl dl", 1) == ["dlq"]
    assert set(complete("queuectl dlq ", 2)) == {"list", "retry", "purge", "clear"}
    assert "--priority" in complete("queuectl enqueue --pri", 2)
