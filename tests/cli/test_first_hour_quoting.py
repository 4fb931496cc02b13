"""A JSON job that bash or PowerShell quoting mangled on its way to `enqueue`: one error line,
then the forms that reach queuectl whole, which work as shown; never a hint that would run the
JSON as a command, and the queue unchanged."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl.store import Store, open_store
from tests.cli.conftest import dump
from tests.support.cli import BIN

Cli = Callable[..., subprocess.CompletedProcess[str]]

#: What reaches argv when `{"id":"job1","command":"sleep 2"}` goes through a shell unquoted or
#: quoted the wrong way, and what the error line says the shell did.
MANGLED = {
    # PowerShell 5 passes the inner double quotes unescaped: the C runtime drops them.
    "powershell": (["{id:job1,command:sleep 2}"], "its double quotes were taken"),
    # ... and splits at the space it no longer sees inside quotes, given '{"...": "sleep 2"}'.
    "powershell-split": (["{id:job1,command:sleep", "2}"], "split it into 2 words"),
    # bash, unquoted: brace expansion at the comma, quotes removed.
    "bash-braces": (["id:job1", "command:sleep 2"], "split it into 2 words"),
    # bash, unquoted with spaces after the colons: word splitting.
    "bash-spaces": (["{id:", "job1,", "command:", "sleep 2}"], "split it into 4 words"),
    # cut by the shell at its spaces, quotes intact (cmd.exe, or "$json" unquoted).
    "cut": (['{"id":', '"job1",', '"command":', '"sleep', '2"}'], "split it into 5 words"),
    # a shell that does not take ' as a quote passes it on.
    "outer-quotes": (['\'{"id":"job1","command":"sleep 2"}\''], "the quotes around it"),
}


@pytest.fixture
def target(tmp_path: Path) -> str:
    """The command line is the subject here, not the backend: a SQLite file."""
    return str(tmp_path / "queue.db")


def shell_env(target: str) -> dict[str, str]:
    return {**os.environ, "QUEUECTL_DB": target, "PATH": f"{BIN}:{os.environ['PATH']}"}


@pytest.mark.parametrize("case", sorted(MANGLED))
def test_mangled_json_gets_the_forms_that_work_in_both_shells(
    cli: Cli, target: str, store: Store, tmp_path: Path, case: str
) -> None:
    words, how = MANGLED[case]
    before = dump(store)
    result = cli("enqueue", *words)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert dump(store) == before
    error, *hint = result.stderr.splitlines()
    assert error.startswith("error: the JSON job was mangled by the shell's quoting: "), error
    assert how in error, error
    assert "Traceback" not in result.stderr
    assert hint[0] == "hint: these forms reach queuectl whole, in bash and in PowerShell alike:"
    forms = [line.strip() for line in hint[1:]]
    assert forms == [
        "queuectl enqueue --id job1 --command 'sleep 2'",
        "queuectl enqueue --id job1 -- sleep 2",
        """echo '{"id": "job1", "command": "sleep 2"}' | queuectl enqueue --file -""",
    ]
    # Never the JSON as a command: no form starts with it, none puts it after `--`.
    for form in forms:
        assert not form.startswith(("{", "'{", '"{')), form
        assert "-- {" not in form, form
        assert "-- '{" not in form, form
    # Each works as shown, in a real shell, on a store of its own.
    for n, form in enumerate(forms):
        each = str(tmp_path / f"form{n}.db")
        ran = subprocess.run(
            ["bash", "-c", form], capture_output=True, text=True, env=shell_env(each), timeout=60
        )
        assert (ran.returncode, ran.stdout) == (0, "job1\n"), (form, ran.stderr)
        opened = open_store(each)
        try:
            job = opened.get("job1")
            assert job is not None
            assert job.command == "sleep 2", form
        finally:
            opened.close()


def test_a_job_read_back_keeps_its_fields_in_the_hint(cli: Cli, tmp_path: Path) -> None:
    result = cli("enqueue", "{id:nightly,queue:backups,priority:3,command:pg_dump -f /tmp/x db}")
    assert result.returncode == 2
    forms = [line.strip() for line in result.stderr.splitlines()[2:]]
    assert forms[0] == (
        "queuectl enqueue --id nightly --queue backups --priority 3 --command 'pg_dump -f /tmp/x db'"
    )
    piped = json.loads(forms[2].split("'")[1])
    assert piped == {
        "id": "nightly",
        "queue": "backups",
        "priority": 3,
        "command": "pg_dump -f /tmp/x db",
    }
    ran = subprocess.run(
        ["bash", "-c", forms[2]],
        capture_output=True,
        text=True,
        env=shell_env(str(tmp_path / "piped.db")),
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr


def test_a_job_that_cannot_be_read_back_gets_an_example(cli: Cli) -> None:
    # A comma in the command: its pairs cannot be told apart again.
    result = cli("enqueue", "{id:count,command:echo a, b | wc -l}")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[1].endswith("alike (with an example job):"), lines
    assert "| wc" not in "\n".join(lines[1:])  # the example, not a guess at their job


def test_what_is_not_mangled_json_is_told_as_before(cli: Cli) -> None:
    plain = cli("enqueue", "sleep 5")
    assert plain.returncode == 2
    assert plain.stderr.splitlines() == [
        "error: 'sleep 5' is not a JSON job; a plain command goes after --command or --: "
        "queuectl enqueue -- sleep 5"
    ]
    typo = cli("enqueue", '{"command": "true",}')
    assert typo.returncode == 2
    assert typo.stderr.splitlines() == [
        "error: invalid JSON: Expecting property name enclosed in double quotes at column 20"
    ]
    words = cli("enqueue", "echo", "id:5")
    assert words.returncode == 2
    assert "mangled" not in words.stderr
    assert cli("enqueue", '{"id": "fine", "command": "true"}').stdout == "fine\n"
