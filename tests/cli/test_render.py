"""What the human-readable views look like on a terminal: widths, times, colours, and user
strings drawn as text (never as rich markup, never as raw escape sequences)."""

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
from tests.cli.terminal import ANSI, in_terminal
from tests.support.fake_runner import runner_row

Cli = Callable[..., subprocess.CompletedProcess[str]]


LONG = "echo " + " ".join(f"word{n}" for n in range(60))
#: Commands that rich would read as markup, and one that carries terminal escapes.
TRICKY = {
    "sed": "sed 's/[/]/_/g' f",
    "grep": "grep -E '[a-z]+' file",
    "link": "rm -rf /tmp/x[link=https://evil]safe[/link]",
    "bold": "echo [bold red]loud[/]",
}
ESCAPES = "printf '\x1b]0;owned\x07' \x1b[31mred\x1b[0m"
#: The one format of every time in a human-readable view (the zone named).
LOCAL_TIME = re.compile(r"\b\d{4}-\d\d-\d\d \d\d:\d\d:\d\d JST\b")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")


@pytest.fixture
def target(tmp_path: Path) -> str:
    """Rendering is the subject here, not the backend: a SQLite file."""
    return str(tmp_path / "queue.db")


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_list_rows_stay_one_line_at_any_width(cli: Cli, target: str, columns: int) -> None:
    ids = ["a34ab248da5351e7", "nightly-backup.20261129", "x"]
    for job_id in ids:
        ok(cli("enqueue", "--id", job_id, "--queue", "reports", "--command", LONG))
    screen = in_terminal(target, "list", columns=columns)
    assert screen.returncode == 0, screen.stderr
    lines = screen.lines
    assert len(lines) == 1 + len(ids), screen.text  # a header, then one line a job
    assert all(cell_len(line) <= columns for line in lines), screen.text
    for job_id, line in zip(reversed(ids), lines[1:], strict=True):
        assert line.split()[0] == job_id  # whole, never folded
        assert "echo word0" in line
        assert line.rstrip().endswith("…") or "…" in line
    assert "word59" not in screen.text
    if columns >= 80:
        assert "UPDATED" in lines[0]


def test_times_share_one_local_format(cli: Cli, target: str, store: Store) -> None:
    make(store, "done", "completed")
    make(store, "gone", "dead")
    now = store.clock.now_ms()
    store.register_runner(runner_row("r1", host="elsewhere", pid=4242, workers=2, at_ms=now))
    ok(cli("schedule", "add", "tick", "--every", "1h", "--command", "true"))
    tokyo = {"TZ": "Asia/Tokyo"}
    views = {
        "list": ["list"],
        "show": ["show", "done"],
        "dlq": ["dlq", "list"],
        "status": ["status"],
        "workers": ["worker", "list"],
        "schedules": ["schedule", "list"],
    }
    for name, argv in views.items():
        screen = in_terminal(target, *argv, columns=200, env=tokyo)
        assert screen.returncode == 0, (name, screen.stderr)
        assert not ISO.search(screen.text), (name, screen.text)
        if name != "status":
            assert LOCAL_TIME.search(screen.text), (name, screen.text)
    workers = in_terminal(target, "worker", "list", columns=120, env=tokyo)
    assert len(LOCAL_TIME.findall(workers.text)) == 2, workers.text
    workers = in_terminal(target, "worker", "list", columns=60, env=tokyo)
    assert len(workers.lines) == 3, workers.text  # the title, the header, one runner
    # Narrow: the heartbeat is short, its zone named in the header.
    assert "HEARTBEAT JST" in workers.lines[1], workers.text
    assert re.search(r"\b\d\d:\d\d:\d\d\b", workers.lines[2]), workers.text
    shown = in_terminal(target, "show", "done", columns=200, env=tokyo).text
    # since when it is completed, created, started, finished; then the attempt's start and end
    assert len(LOCAL_TIME.findall(shown)) == 6, shown
    narrow = in_terminal(target, "show", "done", columns=80, env=tokyo).text
    assert len(LOCAL_TIME.findall(narrow)) == 4, narrow  # the attempt's times short...
    assert "STARTED JST" in narrow, narrow  # ...their zone in the header
    # --json stays ISO-8601 UTC, whatever the zone.
    shown_json = in_terminal(target, "show", "done", "--json", env=tokyo).text
    assert len(re.findall(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"', shown_json)) == 7


def _colour(raw: str, state: str, code: str) -> bool:
    """Whether `state` is drawn in the ANSI colour `code` (31 red, 32 green...)."""
    return re.search(rf"\x1b\[(?:\d+;)*{code}(?:;\d+)*m{state}", raw) is not None


def test_states_are_coloured_on_a_terminal_only(cli: Cli, target: str, store: Store) -> None:
    make(store, "good", "completed")
    make(store, "bad", "dead")
    for argv in (["list"], ["status"], ["show", "bad"], ["show", "good"]):
        raw = in_terminal(target, *argv).raw
        if argv != ["show", "good"]:
            assert _colour(raw, "dead", "31"), (argv, raw)
        if argv != ["show", "bad"]:
            assert _colour(raw, "completed", "32"), (argv, raw)
    no_color = in_terminal(target, "list", env={"NO_COLOR": "1"}).raw
    assert not re.search(r"\x1b\[(?:\d+;)*3\dm", no_color), no_color
    for argv in (["list"], ["status"], ["show", "bad"]):
        assert "\x1b" not in ok(cli(*argv))  # a pipe gets plain text


def test_user_strings_are_text_not_markup(cli: Cli, target: str, store: Store) -> None:
    for name, command in TRICKY.items():
        ok(cli("enqueue", "--id", name, "--command", command))
        make(store, f"dead-{name}", "dead", command=command)
        ok(cli("schedule", "add", f"s-{name}", "--every", "1h", "--command", command))
    for argv in (["list"], ["dlq", "list"], ["schedule", "list"]):
        for columns in (200, 80):
            screen = in_terminal(target, *argv, columns=columns)
            assert screen.returncode == 0, (argv, screen.stderr)
            assert "Error" not in screen.stderr
            for command in TRICKY.values():
                shown = command if columns == 200 else command[:10]
                assert shown in screen.text, (argv, command, screen.text)
        piped = ok(cli(*argv))
        for command in TRICKY.values():
            assert command in piped, (argv, command, piped)
    for name, command in TRICKY.items():
        assert command in in_terminal(target, "show", name).text
        assert command in ok(cli("show", name))


def test_escape_sequences_in_commands_are_made_visible(cli: Cli, target: str) -> None:
    ok(cli("enqueue", "--id", "esc", "--command", ESCAPES))
    ok(cli("schedule", "add", "esc-every", "--every", "1h", "--command", ESCAPES))
    visible = "printf '\\x1b]0;owned\\x07' \\x1b[31mred\\x1b[0m"
    for argv in (["show", "esc"], ["list"], ["schedule", "list"]):
        screen = in_terminal(target, *argv, columns=200)
        assert screen.returncode == 0, screen.stderr
        assert "\x1b]" not in screen.raw, argv
        assert "\x07" not in screen.raw, argv
        assert "\x1b[31mred" not in screen.raw, argv
        assert visible in screen.text, (argv, screen.text)
        piped = ok(cli(*argv))
        assert "\x1b" not in piped, argv
        assert visible in piped, argv
    assert ANSI.sub("", visible) == visible


#: What psql says when its server is down: longer than any column an 80-column table can give.
REFUSED = (
    'psql: error: connection to server at "db.internal.example.com" (10.0.0.5), port 5432 '
    "failed: Connection refused. Is the server running on that host and accepting TCP/IP "
    "connections?"
)
HMS = re.compile(r"\b\d\d:\d\d:\d\d\b")


def died(store: Store, job_id: str, code: int, said: str) -> None:
    """A dead job whose only attempt exited `code` having printed `said`."""
    make(store, job_id, "pending", max_retries=0, command=f"backup --to {job_id}")
    assert finish(store, job_id, code, output=f"starting\n{said}\n".encode()) == "dead"


@pytest.mark.parametrize("argv", [["list"], ["dlq", "list"]])
def test_ids_and_errors_are_never_cut_at_80_columns(
    target: str, store: Store, argv: list[str]
) -> None:
    died(store, "nightly-backup.20261129", 2, REFUSED)
    died(store, "1a2441d6aa41b0c2f3e9d8a7", 127, "sh: 1: pgdump: not found")
    make(store, "fine", "completed")
    screen = in_terminal(target, *argv, columns=80, env={"TZ": "Europe/Paris"})
    assert screen.returncode == 0, screen.stderr
    lines = screen.lines
    assert all(cell_len(line) <= 80 for line in lines), screen.text
    assert all(line == line.rstrip() for line in lines), screen.text
    flat = " ".join(line.strip() for line in lines)
    assert f"exit code 2: {REFUSED}" in flat, screen.text
    assert "exit code 127 (command not found): sh: 1: pgdump: not found (not retried)" in flat
    for job_id in ("nightly-backup.20261129", "1a2441d6aa41b0c2f3e9d8a7"):
        [row] = [line for line in lines if line.startswith(job_id + " ")]
        assert HMS.search(row), row  # a short time...
        assert not LOCAL_TIME.search(row), row
    header = next(line for line in lines if line.startswith("ID "))
    assert re.search(r"UPDATED CET\b", header), header  # ...whose zone the header names


@pytest.mark.parametrize("argv", [["list"], ["dlq", "list"]])
def test_at_200_columns_each_job_is_one_line_with_its_whole_error(
    target: str, store: Store, argv: list[str]
) -> None:
    died(store, "nightly-backup.20261129", 2, "psql: error: connection refused")
    screen = in_terminal(target, *argv, columns=200, env={"TZ": "America/New_York"})
    assert screen.returncode == 0, screen.stderr
    [row] = [line for line in screen.lines if line.startswith("nightly-backup.20261129 ")]
    assert "exit code 2: psql: error: connection refused" in row
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d EST\b", row), row
    assert "LAST ERROR" in screen.text


def test_config_list_keeps_every_key_and_value_whole_at_80_columns(cli: Cli, target: str) -> None:
    ok(cli("config", "set", "backoff_max", "36000"))
    ok(cli("config", "set", "retain_completed", "8640000"))
    screen = in_terminal(target, "config", "list", columns=80)
    assert screen.returncode == 0, screen.stderr
    assert all(cell_len(line) <= 80 for line in screen.lines), screen.text
    assert "…" not in screen.text
    rows = {line.split()[0]: line.split()[1:3] for line in screen.lines[1:] if line[:1] != " "}
    assert rows["backoff_max"] == ["36000", "3600"]
    assert rows["retain_completed"] == ["8640000", "604800"]
    assert rows["retry_not_runnable"] == ["0", "0"]
    flat = " ".join(" ".join(line.split()) for line in screen.lines)
    assert "seconds completed and cancelled jobs are kept; 0 = forever" in flat  # wrapped


def test_queue_list_keeps_rate_and_every_count_at_80_columns(cli: Cli, target: str) -> None:
    ok(cli("queue", "set", "reports-nightly", "--rate", "10/1m", "--concurrency", "4"))
    ok(cli("enqueue", "--queue", "reports-nightly", "--command", "true"))
    narrow = in_terminal(target, "queue", "list", columns=80)
    assert narrow.returncode == 0, narrow.stderr
    assert all(cell_len(line) <= 80 for line in narrow.lines), narrow.text
    assert narrow.lines[0].split() == [
        "QUEUE", "STATUS", "LIMIT", "RATE", "pend", "run", "done", "fail", "dead", "canc"
    ]  # fmt: skip
    assert narrow.lines[1].split() == ["reports-nightly", "active", "4", "10/60s", "1"] + ["0"] * 5
    wide = in_terminal(target, "queue", "list", columns=200)
    assert "processing" in wide.lines[0]
    piped = ok(cli("queue", "list"))
    assert all(line == line.rstrip() for line in piped.splitlines()), piped


@pytest.mark.parametrize(
    ("zone", "utc", "shown"),
    [
        ("Europe/Paris", "2031-12-06T07:00:00.000Z", "2031-12-06 08:00:00 CET"),
        ("America/New_York", "2031-12-06T13:00:00.000Z", "2031-12-06 08:00:00 EST"),
    ],
)
def test_a_run_at_without_an_offset_is_local_time_shown_back_with_its_zone(
    cli: Cli, target: str, zone: str, utc: str, shown: str
) -> None:
    here = {"TZ": zone}
    added = cli("enqueue", "--run-at", "2031-12-06 08:00", "--command", "true", env=here)
    job_id = ok(added).strip()
    assert added.stderr.splitlines()[0] == f"{job_id} starts no sooner than {shown}"
    assert json.loads(ok(cli("show", job_id, "--json", env=here)))["run_at"] == utc
    # An explicit offset means what it says, whatever the local zone.
    pinned = ok(cli("enqueue", "--run-at", "2031-12-06T08:00:00Z", "-c", "true", env=here))
    assert (
        json.loads(ok(cli("show", pinned.strip(), "--json")))["run_at"]
        == "2031-12-06T08:00:00.000Z"
    )
    # explain and show read the same clock as the user typed in.
    said = ok(cli("explain", job_id, env=here))
    assert shown in said, said
    assert not ISO.search(said), said
    assert shown in in_terminal(target, "show", job_id, env=here).text


def test_a_cron_without_tz_says_it_is_read_in_utc(cli: Cli) -> None:
    paris = {"TZ": "Europe/Paris"}
    added = cli("schedule", "add", "morning", "--cron", "0 8 * * *", "-c", "true", env=paris)
    assert added.returncode == 0, added.stderr
    assert re.fullmatch(
        r"schedule morning: next at \d{4}-\d\d-\d\d 09:00:00 CET \(the cron is read in UTC; "
        r"--tz names another zone, e.g\. --tz Europe/Paris\)\n",
        added.stderr,
    ), added.stderr
    local = cli(
        "schedule", "add", "local", "--cron", "0 8 * * *", "--tz", "Europe/Paris", "-c", "true",
        env=paris,
    )  # fmt: skip
    assert re.fullmatch(r"schedule local: next at \S+ 08:00:00 CET\n", local.stderr), local.stderr


def test_a_hook_job_is_marked_in_list_and_its_json(cli: Cli, target: str, store: Store) -> None:
    ok(cli("hook", "add", "page", "--on", "dead", "--command", "notify-me"))
    make(store, "broken", "dead")
    listed = in_terminal(target, "list", columns=120).text
    [row] = [line for line in listed.splitlines() if "notify-me" in line]
    assert "hook page: notify-me" in row, listed
    [broken] = [line for line in listed.splitlines() if line.startswith("broken ")]
    assert "hook" not in broken
    jobs = json.loads(ok(cli("list", "--json")))
    marks = {job["command"]: (job.get("hook"), job.get("made_by")) for job in jobs}
    assert marks["notify-me"] == ("page", "hook page: dead of broken")
    assert marks["true"] == (None, None)


def test_a_failed_job_shows_when_it_runs_next_and_requeue_runs_it_now(
    cli: Cli, target: str, store: Store
) -> None:
    make(store, "flaky", "pending", max_retries=3, command="flaky.sh")
    assert finish(store, "flaky", 1, output=b"timeout talking to api\n") == "failed"
    waiting = store.get("flaky")
    assert waiting is not None
    paris = {"TZ": "Europe/Paris"}
    listed = in_terminal(target, "list", columns=200, env=paris).text
    at = datetime.fromtimestamp(waiting.run_at_ms / 1000, ZoneInfo("Europe/Paris"))
    today = at.date() == datetime.now(ZoneInfo("Europe/Paris")).date()
    short = f"{at:%H:%M:%S}" if today else f"{at:%m-%d %H:%M}"
    expected = f"exit code 1: timeout talking to api (next run {short})"
    assert expected in listed, listed
    ran = cli("requeue", "flaky")
    assert (ran.returncode, ran.stdout) == (0, "flaky\n"), ran.stderr
    again = store.get("flaky")
    assert again is not None
    assert (again.state, again.attempts) == ("pending", 0)
    assert again.run_at_ms <= store.clock.now_ms()
