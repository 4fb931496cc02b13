"""The command line's words and exit codes: hints for common mistakes, no framework phrasing,
Ctrl-C and timeouts per SPEC 9.6, typos that create nothing, and the smaller courtesies."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl.store import JobFilter, Store
from tests.cli.conftest import make
from tests.cli.terminal import in_terminal
from tests.support.cli import QUEUECTL
from tests.support.fake_runner import register_live

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def target(tmp_path: Path) -> str:
    """The command line is the subject here, not the backend: a SQLite file."""
    return str(tmp_path / "queue.db")


def one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    return lines[0]


def ids(cli: Cli) -> list[str]:
    return [job["id"] for job in json.loads(cli("list", "--json").stdout)]


# -- item 5: errors in the user's words


def test_a_plain_command_is_pointed_to_command_or_dashdash(cli: Cli) -> None:
    message = one_error(cli("enqueue", "sleep 5"), 2)
    assert "--command" in message
    assert "-- sleep 5" in message
    assert "JSON" in message
    assert ids(cli) == []


def test_db_after_the_command_is_named_a_global_option(cli: Cli, tmp_path: Path) -> None:
    for argv in (["list", "--db", "x.db"], ["enqueue", "--db=x.db", "-c", "true"]):
        message = one_error(cli(*argv), 2)
        assert "global option" in message
        assert "before the command" in message
    assert not (tmp_path / "x.db").exists()


def test_a_mistyped_command_gets_a_suggestion(cli: Cli) -> None:
    assert "did you mean 'list'" in one_error(cli("lsit"), 2)
    assert "did you mean 'enqueue'" in one_error(cli("enqeue"), 2)
    assert "did you mean 'retry'" in one_error(cli("dlq", "retyr"), 2)
    assert "did you mean" not in one_error(cli("frobnicate"), 2)


@pytest.mark.parametrize(
    ("word", "named"),
    [
        ("retry", "queuectl requeue ID"),
        ("restart", "queuectl dlq retry ID"),
        ("ls", "queuectl list"),
        ("start", "queuectl worker start"),
        ("stop", "queuectl worker stop"),
        ("add", "queuectl enqueue"),
        ("follow", "queuectl logs --follow"),
        ("kill", "queuectl cancel ID"),
        ("rm", "queuectl purge"),
        ("clean", "queuectl purge"),
    ],
)
def test_other_tools_words_name_their_command_here(cli: Cli, word: str, named: str) -> None:
    message = one_error(cli(word), 2)
    assert named in message, message
    assert "reset" not in message  # never a destructive command for a harmless word


def test_a_destructive_command_is_offered_only_for_its_near_spelling(cli: Cli) -> None:
    assert "did you mean 'reset'" in one_error(cli("resett"), 2)
    for word in ("retyr", "rest", "restat", "stat"):
        message = one_error(cli(word), 2)
        assert "reset" not in message, message
        assert "purge" not in message, message


def test_no_framework_words_reach_the_user(cli: Cli, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    for argv, words in [
        (["enqueue", "--file", missing], ["--file", "No such file"]),
        (["enqueue", "--priority", "high", "-c", "true"], ["--priority", "'high'"]),
        (["worker", "start", "--count", "0"], ["--count", "from 1 to 1024"]),
        (["enqueue", '{"command":"true","max_retries":true}'], ["max_retries", "got true"]),
        (["show"], ["missing ID"]),
    ]:
        message = one_error(cli(*argv), 2)
        for word in words:
            assert word in message, (argv, message)
        for framework in ("Invalid value for", "True", "' / '-", "<=x<=", "Missing argument"):
            assert framework not in message, (argv, message)
    lease = one_error(cli("config", "set", "lease_seconds", "0"), 2)
    assert "at least 1 second," in lease


@pytest.mark.parametrize("group", ["config", "queue", "dlq", "worker", "schedule"])
def test_a_group_without_its_subcommand_prints_its_help(cli: Cli, group: str) -> None:
    result = cli(group)
    assert result.returncode == 2
    assert result.stderr.startswith(f"Usage: queuectl {group} ")
    assert "error:" not in result.stderr
    assert "Commands:" in result.stderr


def test_help_summaries_are_whole(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for argv in (["--help"], ["worker", "--help"], ["dlq", "--help"], ["config", "--help"]):
        shown = cli(*argv).stdout
        assert not re.search(r"[a-z]\.\.\.$", shown, re.MULTILINE), shown  # click's cut
    assert "pick it up within seconds." in " ".join(cli("config", "--help").stdout.split())


# -- items 6 and 7: exit codes, signals, and a watcher that says no runner is up


def watch(target: str, *argv: str) -> subprocess.Popen[str]:
    env = {**os.environ, "QUEUECTL_DB": target}
    return subprocess.Popen(
        [QUEUECTL, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.parametrize("argv", [["wait"], ["logs", "--follow", "job"]])
def test_ctrl_c_exits_130_after_saying_no_runner_is_up(
    cli: Cli, target: str, argv: list[str]
) -> None:
    assert cli("enqueue", "--id", "job", "--command", "true").returncode == 0
    process = watch(target, *argv)
    assert process.stderr is not None
    try:
        ready, _, _ = select.select([process.stderr], [], [], 20)
        notice = process.stderr.readline() if ready else ""
    finally:
        if not ready:
            process.kill()
            process.communicate()
    assert "no runner serving queue 'default' is up" in notice
    assert "queuectl worker start" in notice
    process.send_signal(signal.SIGINT)
    _, rest = process.communicate(timeout=30)
    assert process.returncode == 130, rest
    assert "error" not in rest
    assert "aborted" not in rest


def test_wait_timeout_exits_124_and_says_so_once(cli: Cli) -> None:
    assert cli("enqueue", "--queue", "batch", "--command", "true").returncode == 0
    result = cli("wait", "--timeout", "2.5s")
    assert result.returncode == 124, result.stderr
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("error: timed out after 2.5s")
    notices = [line for line in lines if "no runner serving queue 'batch'" in line]
    assert len(notices) == 1, result.stderr
    assert "--queue batch" in notices[0]


def test_watchers_exit_1_for_dead_and_cancelled_jobs(cli: Cli, store: Store) -> None:
    make(store, "gone", "dead")
    make(store, "stopped", "cancelled")
    make(store, "fine", "completed")
    for job_id, code in (("gone", 1), ("stopped", 1), ("fine", 0)):
        assert cli("wait", job_id).returncode == code, job_id
        followed = cli("logs", "--follow", job_id)
        assert followed.returncode == code, (job_id, followed.stderr)
    assert "gone ended dead" in cli("logs", "-f", "gone").stderr


# -- item 8: typos create nothing


def test_resuming_an_unknown_queue_is_an_error(cli: Cli, store: Store) -> None:
    message = one_error(cli("queue", "resume", "typo"), 1)
    assert "no queue 'typo'" in message
    assert json.loads(cli("queue", "list", "--json").stdout) == {}
    assert cli("queue", "pause", "later").returncode == 0  # SPEC: allowed without jobs
    assert cli("queue", "resume", "later").returncode == 0
    make(store, "j", "pending", queue="work")
    assert cli("queue", "resume", "work").returncode == 0


READS = [
    ["list"],
    ["status"],
    ["show", "x"],
    ["logs", "x"],
    ["dlq", "list"],
    ["worker", "list"],
    ["queue", "list"],
    ["schedule", "list"],
    ["config", "list"],
    ["explain", "x"],
    ["wait"],
]


@pytest.mark.parametrize("argv", READS, ids=" ".join)
def test_a_read_command_on_a_missing_store_creates_nothing(tmp_path: Path, argv: list[str]) -> None:
    folder = tmp_path / "typo"
    db = folder / "queue.db"
    result = subprocess.run(
        [QUEUECTL, "--db", str(db), *argv], capture_output=True, text=True, timeout=60
    )
    message = one_error(result, 1)
    assert message == f"error: no queue at {db}; run queuectl init or enqueue a job first"
    assert not folder.exists()


def test_writing_commands_still_create_the_store(tmp_path: Path) -> None:
    db = tmp_path / "new" / "queue.db"
    result = subprocess.run(
        [QUEUECTL, "--db", f"sqlite:///{db}", "enqueue", "-c", "true"], capture_output=True
    )
    assert result.returncode == 0
    assert db.exists()
    listed = subprocess.run([QUEUECTL, "--db", str(db), "list", "--json"], capture_output=True)
    assert len(json.loads(listed.stdout)) == 1


# -- item 9 and 13: the smaller ones, and dlq clear


def test_dlq_retry_with_ids_and_all_says_not_both(cli: Cli, store: Store) -> None:
    make(store, "gone", "dead")
    message = one_error(cli("dlq", "retry", "gone", "--all"), 2)
    assert "not both" in message
    assert json.loads(cli("show", "gone", "--json").stdout)["state"] == "dead"


def test_dlq_purge_says_how_many_it_will_delete(target: str, store: Store) -> None:
    for n in range(3):
        make(store, f"gone{n}", "dead")
    answered = in_terminal(target, "dlq", "purge", typed="n\n")
    assert "delete 3 dead jobs?" in answered.stderr
    assert answered.returncode == 1
    assert len(store.list_jobs(JobFilter(states=["dead"])).jobs) == 3


@pytest.mark.parametrize("spelling", [["dlq", "clear"], ["dlq:clear"], ["dlq", "purge"]])
def test_dlq_clear_is_dlq_purge(cli: Cli, store: Store, spelling: list[str]) -> None:
    make(store, "gone", "dead")
    make(store, "fine", "completed")
    result = cli(*spelling, "--yes")
    assert result.returncode == 0, result.stderr
    assert "purged 1 dead job" in result.stderr
    assert ids(cli) == ["fine"]


def test_a_unique_key_held_by_another_id_says_so(cli: Cli) -> None:
    assert cli("enqueue", "--id", "first", "--unique-key", "k", "-c", "true").stdout == "first\n"
    again = cli("enqueue", "--id", "second", "--unique-key", "k", "-c", "true")
    assert again.returncode == 0
    assert again.stdout == "first\n"
    assert "first" in again.stderr
    assert "second" in again.stderr
    assert "unique key 'k'" in again.stderr
    quiet = cli("enqueue", "--unique-key", "k", "-c", "true")
    assert "unique key" not in quiet.stderr


def test_enqueue_says_when_no_runner_serves_the_queue(cli: Cli, store: Store) -> None:
    alone = cli("enqueue", "-c", "true")
    assert alone.returncode == 0
    assert alone.stderr == (
        "note: no runner serving queue 'default' is up; start one with: queuectl worker start\n"
    )
    register_live(store, "r1", queues=["default"])
    assert cli("enqueue", "-c", "true").stderr == ""
    other = cli("enqueue", "--queue", "reports", "-c", "true")
    assert other.stderr == (
        "note: no runner serving queue 'reports' is up; start one with: "
        "queuectl worker start --queue reports\n"
    )
    store.request_stop()
    assert cli("enqueue", "-c", "true").stderr == (
        "note: no runner serving queue 'default' takes jobs: every one is stopping; "
        "start one with: queuectl worker start\n"
    )


# -- items 9 and 10: the runner's log file, and detaching exactly once


def runners(cli: Cli) -> list[dict[str, object]]:
    result: list[dict[str, object]] = json.loads(cli("worker", "list", "--json").stdout)
    return result


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 20) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_detach_with_bundled_flags_starts_one_runner(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    started = cli("worker", "start", "-dn", "2", timeout=30)
    try:
        assert started.returncode == 0, started.stderr
        pid = int(started.stdout)
        listed = runners(cli)
        assert [(r["pid"], r["workers"]) for r in listed] == [(pid, 2)]
        logs = list((state / "queuectl").iterdir())
        assert [log.name.endswith(f"-{pid}.log") for log in logs] == [True]
        assert logs[0].stat().st_mode & 0o777 == 0o600  # commands and output: the user's only
        time.sleep(1)  # a runner that detached again would have registered by now
        assert len(runners(cli)) == 1
    finally:
        assert cli("worker", "stop", "--timeout", "20s", timeout=30).returncode == 0
    assert runners(cli) == []


def test_log_file_in_the_foreground_gets_the_log(cli: Cli, target: str, tmp_path: Path) -> None:
    log = tmp_path / "runner.log"
    runner = watch(target, "worker", "start", "--log-file", str(log))
    try:
        assert cli("enqueue", "--id", "logged", "-c", "true").returncode == 0
        assert cli("wait", "logged", "--timeout", "20s", timeout=30).returncode == 0
        wait_until(lambda: log.exists() and "logged" in log.read_text(), "the log line")
        assert log.stat().st_mode & 0o777 == 0o600
    finally:
        runner.send_signal(signal.SIGTERM)
        runner.communicate(timeout=30)
    assert runner.returncode == 0


def test_logs_of_a_job_that_has_not_run_says_so(cli: Cli, store: Store) -> None:
    waiting = cli("enqueue", "--id", "later", "-c", "echo hi")
    assert waiting.returncode == 0
    shown = cli("logs", "later")
    assert (shown.returncode, shown.stdout) == (0, "")
    assert shown.stderr == "later has not run (pending); `queuectl explain later` says why\n"
    make(store, "ran", "completed")
    assert cli("logs", "ran").stderr == ""  # it ran and printed nothing: nothing to add


def test_the_demo_ends_with_a_hint_that_works(cli: Cli, tmp_path: Path) -> None:
    """Without --keep the scratch store is deleted: the closing hint points at --keep rather
    than at commands that would act on the user's own store."""
    shown = cli("demo", env={"COLUMNS": "200", "TMPDIR": str(tmp_path)}, timeout=60)
    assert shown.returncode == 0, shown.stderr
    last = shown.stdout.strip().splitlines()[-1]
    assert last.startswith("next: queuectl demo --keep keeps the scratch store"), last
    assert list(tmp_path.iterdir()) == []  # the scratch store is gone


def test_ids_are_taken_by_unique_prefix_and_last(cli: Cli) -> None:
    for job_id in ("nightly-1", "nightly-2", "weekly-1"):
        assert cli("enqueue", "--id", job_id, "-c", "true").returncode == 0
    shown = cli("show", "week", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == "weekly-1"
    assert json.loads(cli("explain", "@last", "--json").stdout)["id"] == "weekly-1"
    ambiguous = one_error(cli("cancel", "nightly"), 2)
    assert ambiguous == (
        "error: 'nightly' starts more than one job id: nightly-1, nightly-2; give more of it"
    )
    cancelled = cli("cancel", "nightly-2")
    assert cancelled.returncode == 0, cancelled.stderr
    assert "no job 'monthly'" in one_error(cli("logs", "monthly"), 1)
