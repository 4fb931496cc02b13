"""The installed `queuectl` entry point, run in subprocesses by tests of every folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
QUEUECTL = str(BIN / "queuectl")


def run_cli(
    target: str, *args: str, input: str | None = None, timeout: float = 60, **popen: Any
) -> subprocess.CompletedProcess[str]:
    """The installed `queuectl` entry point in a subprocess, on `target`."""
    return run(args, target, input=input, timeout=timeout, **popen)


def run(
    args: Sequence[str],
    target: str | None = None,
    input: str | bytes | None = None,
    timeout: float = 60,
    text: bool = True,
    env: dict[str, str] | None = None,
    umask: int = -1,
    **popen: Any,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """The installed `queuectl` with `args` (pass `--db` yourself, or `target` for QUEUECTL_DB)."""
    environ = {**os.environ, **(env or {})}
    environ.pop("QUEUECTL_DEBUG", None)
    environ.pop("QUEUECTL_API_TOKEN", None)
    if target is not None:
        environ["QUEUECTL_DB"] = target
    return subprocess.run(
        [QUEUECTL, *args],
        input=input,
        capture_output=True,
        text=text,
        env=environ,
        timeout=timeout,
        check=False,
        umask=umask,
        **popen,
    )


def assert_clean_error(result: subprocess.CompletedProcess, code: int, *words: str) -> str:  # type: ignore[type-arg]
    """The command failed with `code` and said why in one `error: ...` line naming `words`."""
    stderr = result.stderr if isinstance(result.stderr, str) else result.stderr.decode()
    assert result.returncode == code, (result.returncode, stderr)
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    for word in words:
        assert word.lower() in lines[0].lower(), (word, stderr)
    return lines[0]
