"""`show` as a person reads it: a summary of the job (its state, when and why, its command, its
attempts, times in local time) over its attempts table, in 80 columns and in 200; `--json`
keeps every field."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from rich.cells import cell_len

from queuectl.store import Store
from tests.cli.conftest import finish, make
from tests.cli.terminal import in_terminal

Cli = Callable[..., subprocess.CompletedProcess[str]]

PARIS = {"TZ": "Europe/Paris"}
#: A time as every human-readable view shows it, here in Paris in winter or summer.
LOCAL = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")
#: The field names of the JSON, which the summary says in words instead.
SNAKE = ("max_retries", "no_retry_exit_codes", "created_at", "run_at", "unique_key", "last_error")
JOB_ID = "nightly-backup.db-internal-example-com.20261129T030000Z"
REFUSED = (
    'psql: error: connection to server at "db.internal.example.com" (10.0.0.5), port 5432 '
    "failed: Connection refused. Is the server running on that host and accepting TCP/IP "
    "connections?"
)
COMMAND = (
    "pg_dump --host db.internal.example.com --port 5432 --format custom --file "
    "/var/backups/nightly/db-internal.dump --verbose appdb && gzip -9 /var/backups/nightly/"
    "db-internal.dump"
)


@pytest.fixture
def target(tmp_path: Path) -> str:
    """Rendering is the subject here, not the backend: a SQLite file."""
    return str(tmp_path / "queue.db")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def rows(text: str) -> dict[str, str]:
    """The summary's lines by label, a value folded onto more lines joined back with spaces
    (the attempts table, after the blank line, left out)."""
    found: dict[str, str] = {}
    label = ""
    for line in text.split("\n\n")[0].splitlines():
        head, value = line[:12].strip(), line[12:]
        if head:
            label = head
            found[label] = value
        else:
            found[label] = f"{found[label]} {value}"
    return found


def column(table: str, name: str) -> str:
    """The cells of a drawn table's column `name` (its header on the table's second line),
    read down its rows and joined with spaces."""
    lines = table.splitlines()
    header = lines[1]
    start = header.index(name)
    following = re.search(r"\S", header[start + len(name) :])  # the next column's header
    end = None if following is None else start + len(name) + following.start()
    return " ".join(
        " ".join(line[start:end].split()) for line in lines[2:] if line[start:end].strip()
    )


def paris(ms: int | None) -> str:
    assert ms is not None
    return f"{datetime.fromtimestamp(ms / 1000, ZoneInfo('Europe/Paris')):%Y-%m-%d %H:%M:%S %Z}"


def failed_waiting(store: Store) -> None:
    """JOB_ID: failed once with REFUSED, waiting for its retry; after a completed job, with a
    unique key, a lock and an environment."""
    store.set_config("backoff_base", 600)  # the retry ten minutes off: "next retry" shows
    make(store, "schema-migrate", "completed", queue="backups")
    make(
        store,
        JOB_ID,
        "pending",
        queue="backups",
        priority=5,
        max_retries=3,
        command=COMMAND,
        depends_on=["schema-migrate"],
        unique_key="backup:appdb:nightly",
        lock="appdb",
        env={"PGPASSFILE": "/etc/backup/pgpass"},
        no_retry_exit_codes=[127],
        timeout="30m",
    )
    assert finish(store, JOB_ID, 2, output=f"starting\n{REFUSED}\n".encode()) == "failed"


@pytest.mark.parametrize("columns", [80, 200])
def test_a_failed_job_reads_as_a_summary_in_local_time(
    target: str, store: Store, columns: int
) -> None:
    failed_waiting(store)
    job = store.get(JOB_ID)
    assert job is not None
    screen = in_terminal(target, "show", JOB_ID, columns=columns, env=PARIS)
    assert screen.returncode == 0, screen.stderr
    lines = screen.lines
    assert all(cell_len(line) <= columns for line in lines), screen.text
    assert all(line == line.rstrip() for line in lines), screen.text
    assert "…" not in screen.text  # nothing cut: long values fold onto more lines
    summary = rows(screen.text)
    assert list(summary)[:2] == ["id", "state"]
    assert summary["id"] == JOB_ID  # whole, on its line
    assert summary["state"] == f"failed since {paris(job.finished_at_ms)}"
    assert " ".join(summary["command"].split()) == COMMAND
    assert summary["queue"] == "backups, priority 5"
    assert summary["attempts"] == "1 of 4; exit 127 not retried"
    assert summary["timeout"] == "30m"
    assert " ".join(summary["last error"].split()) == f"exit code 2: {REFUSED}"
    assert re.fullmatch(
        rf"{re.escape(paris(job.run_at_ms))} \(in (\d+s|\d+m(\d\ds)?)\)", summary["next retry"]
    ), summary["next retry"]
    assert summary["created"] == paris(job.created_at_ms)
    assert summary["started"] == paris(job.started_at_ms)
    assert summary["finished"].startswith(paris(job.finished_at_ms) + ", took ")
    assert summary["after"] == "schema-migrate (completed)"
    assert summary["unique key"] == "backup:appdb:nightly"
    assert summary["lock"] == "appdb"
    assert summary["env"] == "PGPASSFILE (values: --json)"
    assert "/etc/backup/pgpass" not in screen.text
    assert summary["output"] == f"{len(REFUSED) + 10} bytes from attempt 1: queuectl logs {JOB_ID}"
    assert not ISO.search(screen.text), screen.text
    assert not any(name in screen.text for name in SNAKE), screen.text
    assert len(summary) <= 18  # a summary, not a dump of every field
    # The attempts table under it, its error whole too.
    table = screen.text.split("\n\n", 1)[1]
    assert table.splitlines()[0].strip() == "attempts"
    assert column(table, "ERROR") == f"exit code 2: {REFUSED}"
    header = table.splitlines()[1].split()
    if columns == 80:  # times short, the zone named once in the header
        assert header[:4] == ["#", "STARTED", "CET", "FINISHED"] or header[:4] == [
            "#", "STARTED", "CEST", "FINISHED"
        ], header  # fmt: skip
        assert len(LOCAL.findall(table)) == 0, table
    else:
        assert header[:3] == ["#", "STARTED", "FINISHED"], header
        assert LOCAL.findall(table) == [paris(job.started_at_ms), paris(job.finished_at_ms)]


def test_show_json_keeps_every_field_as_before(cli: Cli, store: Store) -> None:
    failed_waiting(store)
    shown = json.loads(ok(cli("show", JOB_ID, "--json")))
    job = store.get(JOB_ID)
    assert job is not None
    history = [a["attempt"] for a in shown.pop("history")]
    assert shown == job.to_dict()
    assert history == [1]


def test_each_state_says_when_and_what_next(cli: Cli, target: str, store: Store) -> None:
    make(store, "waiting", "pending", queue="nightly")
    make(store, "gone", "dead", queue="nightly-dead")
    make(store, "done", "completed")
    ok(cli("cancel", "waiting"))
    make(store, "due", "pending")
    for job_id, state, said in [
        ("due", "pending", "It is due, but no runner serving queue 'q-due' is up; start one"),
        ("gone", "dead", "`queuectl dlq retry gone` runs it again"),
        ("done", "completed", None),
        ("waiting", "cancelled", None),
    ]:
        screen = in_terminal(target, "show", job_id, columns=80, env=PARIS)
        assert screen.returncode == 0, screen.stderr
        job = store.get(job_id)
        assert job is not None
        lines = screen.lines
        head = f"state       {state}"
        assert lines[1].startswith(head), screen.text
        if state != "pending":
            assert lines[1] == f"{head} since {paris(job.finished_at_ms)}", screen.text
        if said is not None:
            assert lines[2].startswith(f"            {said}"), screen.text
        else:
            assert lines[2].startswith("command"), screen.text
    never_ran = rows(in_terminal(target, "show", "due", env=PARIS).text)
    assert "output" not in never_ran
    assert "started" not in never_ran


def test_a_hook_job_says_what_made_it(cli: Cli, target: str, store: Store) -> None:
    ok(cli("hook", "add", "page", "--on", "dead", "--command", "notify-me"))
    make(store, "broken", "dead")
    [hook_job] = [j for j in store.list_jobs().jobs if j.made_by]
    summary = rows(in_terminal(target, "show", hook_job.id, env=PARIS).text)
    assert summary["made by"] == "hook page: dead of broken"
    assert "made by" not in rows(in_terminal(target, "show", "broken", env=PARIS).text)
