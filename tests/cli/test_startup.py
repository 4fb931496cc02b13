"""`queuectl enqueue` loads only click, the stdlib and the queue, and `--help` not even the
queue: deterministic, not timed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import queuectl
from queuectl import Queue
from tests.support.cli import run
from tests.support.runners import process_env, start_runner, tag  # noqa: F401 - fixtures

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

#: Loaded by an enqueue only when a runner is up to be woken, and then only the C module.
LAZY = ["_socket"]

#: The store and its driver, which neither help nor the version needs.
STORE = ["queuectl.queue", "queuectl.store", "sqlite3"]

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
    """The top-level packages loaded by a command."""
    return {name.split(".")[0] for name in modules_loaded_by(db, *argv, stdin=stdin)}


def modules_loaded_by(db: Path, *argv: str, stdin: str | None = None) -> set[str]:
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
    return set(json.loads(modules))


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
    assert sorted(loaded & set(LAZY)) == []


def test_enqueue_wakes_a_runner_with_the_c_socket_module_alone(tmp_path: Path) -> None:
    """With a runner's wakeup socket bound, the enqueue loads `_socket` (not `socket`, whose
    import sits between its commit and the runner's start of the job), and wakes it."""
    from queuectl.store.wakeup import SocketWakeup

    db = tmp_path / "queue.db"
    loaded_by(db, "enqueue", "--command", "true")
    runner = SocketWakeup(str(db))
    receiver = runner.bind("test-runner")
    assert receiver is not None
    try:
        loaded = loaded_by(db, "enqueue", "--command", "true")
        assert "_socket" in loaded
        assert "socket" not in loaded
        assert receiver.recv(16) == b"!"
    finally:
        runner.close()


@pytest.mark.backends("sqlite")
def test_enqueue_beside_a_live_runner_loads_no_socket_module(
    queue: Queue,
    target: str,
    start_runner,  # type: ignore[no-untyped-def]  # noqa: F811 - the imported fixture
) -> None:
    """With a runner up, the enqueue wakes it and looks whether it serves the queue: neither
    needs `socket`, whose import costs more than the rest of the wakeup."""
    start_runner()
    loaded = modules_loaded_by(Path(target), "enqueue", "--command", "true")
    assert "queuectl.runner.liveness" in loaded  # it did look at the runner
    assert "socket" not in loaded


def test_only_several_words_after_dashdash_load_shlex(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    assert "shlex" not in loaded_by(db, "enqueue", "--command", "echo hi")
    assert "shlex" not in loaded_by(db, "enqueue", "--", "echo hi")
    assert "shlex" in loaded_by(db, "enqueue", "--", "echo", "a b")


#: What `enqueue --command` has no use for: the readers of JSON jobs, the progress parser, the
#: modules of other commands (reading jobs, changing many, drawing them), and the store's flows
#: of runners and of changes (the store makes a flow at its first use).
NOT_FOR_A_PLAIN_ENQUEUE = {
    "queuectl.cli.jobinput",
    "queuectl.progress",
    "queuectl.cli.jobs",
    "queuectl.cli.bulk",
    "queuectl.cli.render",
    "queuectl.explain",
    "queuectl.store.exchange",
    "queuectl.store.settle",
    "queuectl.store.actions",
    "queuectl.store.reads",
    "queuectl.lifecycle",
}


def test_a_plain_command_loads_no_json_reader_nor_other_commands(tmp_path: Path) -> None:
    db = tmp_path / "queue.db"
    loaded_by(db, "enqueue", "--command", "true")
    loaded = modules_loaded_by(db, "enqueue", "--command", "true")
    assert sorted(loaded & NOT_FOR_A_PLAIN_ENQUEUE) == []
    assert "queuectl.cli.jobinput" in modules_loaded_by(db, "enqueue", '{"command": "true"}')


@pytest.mark.parametrize("argv", [("--help",), ("--version",), ("enqueue", "--help")])
def test_help_and_version_do_not_open_the_store(tmp_path: Path, argv: tuple[str, ...]) -> None:
    loaded = modules_loaded_by(tmp_path / "queue.db", *argv)
    assert sorted(loaded & set(STORE)) == []
    assert not (tmp_path / "queue.db").exists()


def test_the_wrapper_sees_heavy_modules(tmp_path: Path) -> None:
    """The check can fail: a command that draws a table does load rich."""
    db = tmp_path / "queue.db"
    loaded_by(db, "enqueue", "--command", "true")
    assert "rich" in loaded_by(db, "list")


def test_the_version_is_written_once_and_the_cli_prints_it() -> None:
    """pyproject.toml takes its version from queuectl.__version__, and --version prints it."""
    root = Path(__file__).resolve().parents[2]
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "queuectl.__version__"}
    shown = run(["--version"])
    assert (shown.returncode, shown.stdout) == (0, f"queuectl {queuectl.__version__}\n")
