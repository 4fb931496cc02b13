"""`queuectl enqueue` loads only click, the stdlib and the queue: deterministic, not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = [
    "rich",
    "fastapi",
    "uvicorn",
    "psycopg",
    "psycopg_pool",
    "starlette",
    "pydantic",
    "croniter",
]

#: Runs the CLI's main in-process, then reports which modules it had loaded.
WRAPPER = r"""
import json, sys
from queuectl.cli import main
try:
    main(json.loads(sys.argv[1]))
except SystemExit as exc:
    code = exc.code
else:
    code = 0
sys.stderr.write("\nMODULES " + json.dumps(sorted(sys.modules)) + " EXIT " + str(code) + "\n")
"""


def loaded_by(db: Path, *argv: str, stdin: str | None = None) -> set[str]:
    env = {**os.environ, "QUEUECTL_DB": str(db)}
    result = subprocess.run(
        [sys.executable, "-c", WRAPPER, json.dumps(argv)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    modules, code = result.stderr.rsplit("MODULES ", 1)[1].rsplit(" EXIT ", 1)
    assert code.strip() == "0", result.stderr
    return {name.split(".")[0] for name in json.loads(modules)}


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (("enqueue", "--command", "true"), None),
        (("enqueue", '{"command":"true","priority":2}'), None),
        (("enqueue", "--delay", "5s", "--after", "first", "--", "echo", "hi"), None),
        (("enqueue", "--json", "--file", "-"), '{"command":"a"}\n{"command":"b"}\n'),
    ],
)
def test_enqueue_loads_nothing_heavy(
    tmp_path: Path, argv: tuple[str, ...], stdin: str | None
) -> None:
    db = tmp_path / "queue.db"
    loaded_by(db, "enqueue", "--id", "first", "--command", "true")
    loaded = loaded_by(db, *argv, stdin=stdin)
    assert "queuectl" in loaded
    assert "click" in loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_the_wrapper_sees_heavy_modules(tmp_path: Path) -> None:
    """The check can fail: a command that draws a table does load rich."""
    db = tmp_path / "queue.db"
    loaded_by(db, "enqueue", "--command", "true")
    assert "rich" in loaded_by(db, "list")
