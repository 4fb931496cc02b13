"""The real CLI end to end, in subprocesses: enqueue, read commands, config, DLQ, purge."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from queuectl.durations import now_ms, parse_iso
from queuectl.runner.liveness import host_name
from queuectl.store import Store, open_store
from tests.cli.conftest import make
from tests.support.cli import QUEUECTL
from tests.support.clock import FakeClock
from tests.support.fake_runner import register_live
from tests.support.spec import SPEC_FIELDS

Cli = Callable[..., subprocess.CompletedProcess[str]]

STATES = ["pending", "processing", "completed", "failed", "dead", "cancelled"]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def enqueue(cli: Cli, *args: str, **kwargs: Any) -> list[str]:
    return ok(cli("enqueue", *args, **kwargs)).splitlines()


def cli_show(cli: Cli, job_id: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(cli("show", job_id, "--json")))
    return data


def cli_ids(cli: Cli, *args: str) -> list[str]:
    return [job["id"] for job in json.loads(ok(cli("list", "--json", "--limit", "0", *args)))]


def show(store: Store, job_id: str) -> dict[str, Any]:
    """A job as `show --json` prints it, read in-process (fewer subprocesses, faster tests)."""
    job = store.get(job_id)
    assert job is not None
    return job.to_dict()


def ids(store: Store) -> list[str]:
    """The ids of every job, newest first, read in-process."""
    return [job.id for job in store.list_jobs().jobs]


# -- enqueue, the three ways


def test_enqueue_a_json_object(cli: Cli) -> None:
    assert enqueue(cli, '{"id":"job1","command":"sleep 2","priority":4}') == ["job1"]
    job = cli_show(cli, "job1")
    assert list(job) == [*SPEC_FIELDS, "history"]  # show adds the attempts (SPEC 9.3)
    assert (job["command"], job["state"], job["priority"], job["attempts"]) == (
        "sleep 2",
        "pending",
        4,
        0,
    )
    assert (job["queue"], job["max_retries"], job["timeout"], job["unique_key"]) == (
        "default",
        3,
        None,
        None,
    )
    assert job["run_at"] == job["created_at"] == job["updated_at"]
    assert job["run_at"].endswith("Z")
    assert len(job["run_at"]) == len("2026-11-27T22:33:28.123Z")
    assert (job["started_at"], job["finished_at"], job["exit_code"], job["last_error"]) == (
        None,
        None,
        None,
        None,
    )


def test_enqueue_generates_an_id(cli: Cli, store: Store) -> None:
    [job_id] = enqueue(cli, "--command", "true")
    assert show(store, job_id)["id"] == job_id
    [other] = enqueue(cli, '{"command":"true"}')
    assert other != job_id


def test_enqueue_command(cli: Cli, store: Store) -> None:
    [job_id] = enqueue(cli, "--command", "echo hi | tr a-z A-Z")
    assert show(store, job_id)["command"] == "echo hi | tr a-z A-Z"
    [short] = enqueue(cli, "-c", "true", "--id", "short")
    assert short == "short"


def test_enqueue_after_dashdash_quotes_the_words(cli: Cli, store: Store) -> None:
    [job_id] = enqueue(cli, "--priority", "2", "--", "echo", "a b", "$HOME", "--id")
    job = show(store, job_id)
    assert job["command"] == "echo 'a b' '$HOME' --id"
    assert job["priority"] == 2
    [one] = enqueue(cli, "--", "echo $HOME")
    assert show(store, one)["command"] == "echo $HOME"


@pytest.mark.parametrize("from_stdin", [False, True])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"id":"a","command":"true"}', ["a"]),
        ('{\n  "id": "a",\n  "command": "true"\n}\n', ["a"]),
        ('[{"id":"a","command":"true"},{"id":"b","command":"false"}]', ["a", "b"]),
        (
            '{"id":"a","command":"true"}\n\n{"id":"b","command":"x"}\n{"id":"c","command":"y"}\n',
            ["a", "b", "c"],
        ),
    ],
    ids=["object", "pretty-object", "array", "json-lines"],
)
def test_enqueue_file(
    cli: Cli, store: Store, tmp_path: Path, text: str, expected: list[str], from_stdin: bool
) -> None:
    if from_stdin:
        printed = enqueue(cli, "--file", "-", input=text)
    else:
        path = tmp_path / "jobs.json"
        path.write_text(text)
        printed = enqueue(cli, "-f", str(path))
    assert printed == expected
    assert ids(store) == expected[::-1]


def test_enqueue_options_apply_to_every_job_of_a_file(cli: Cli, store: Store) -> None:
    printed = enqueue(
        cli,
        "--file",
        "-",
        "--queue",
        "bulk",
        "--priority",
        "7",
        input='{"command":"a"}\n{"command":"b","priority":1}\n',
    )
    assert len(printed) == 2
    for job_id in printed:
        assert (show(store, job_id)["queue"], show(store, job_id)["priority"]) == ("bulk", 7)


def test_every_enqueue_option(cli: Cli, store: Store, tmp_path: Path) -> None:
    enqueue(cli, "--id", "dep1", "--command", "true")
    enqueue(cli, "--id", "dep2", "--command", "true")
    before = now_ms()
    printed = enqueue(
        cli,
        "--id",
        "full",
        "--queue",
        "emails",
        "--priority",
        "-3",
        "--max-retries",
        "5",
        "--timeout",
        "30s",
        "--delay",
        "10s",
        "--after",
        "dep1",
        "--after",
        "dep2",
        "--unique-key",
        "K1",
        "--cwd",
        str(tmp_path),
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--no-retry-exit-code",
        "64",
        "--command",
        "env",
    )
    assert printed == ["full"]
    job = show(store, "full")
    assert (job["queue"], job["priority"], job["max_retries"], job["timeout"]) == (
        "emails",
        -3,
        5,
        30,
    )
    assert job["depends_on"] == ["dep1", "dep2"]
    assert (job["unique_key"], job["cwd"], job["env"]) == (
        "K1",
        str(tmp_path),
        {"A": "1", "B": "x=y"},
    )
    assert job["no_retry_exit_codes"] == [64]
    delay_ms = parse_iso(job["run_at"]) - parse_iso(job["created_at"])
    assert delay_ms == 10_000
    assert parse_iso(job["created_at"]) >= before - 1


def test_enqueue_run_at(cli: Cli, store: Store) -> None:
    [job_id] = enqueue(cli, "--run-at", "2031-02-03T04:05:06+01:00", "--command", "true")
    assert show(store, job_id)["run_at"] == "2031-02-03T03:05:06.000Z"


def test_enqueue_cwd_is_the_callers_by_default(cli: Cli, store: Store, tmp_path: Path) -> None:
    [job_id] = enqueue(cli, "--command", "pwd", cwd=tmp_path)
    assert show(store, job_id)["cwd"] == str(tmp_path)
    [relative] = enqueue(cli, "--command", "pwd", "--cwd", "sub", cwd=tmp_path)
    assert show(store, relative)["cwd"] == str(tmp_path / "sub")


def test_enqueue_json_prints_the_jobs(cli: Cli, store: Store) -> None:
    out = json.loads(
        ok(cli("enqueue", "--json", "--file", "-", input='[{"command":"a"},{"command":"b"}]'))
    )
    assert [list(job) for job in out] == [SPEC_FIELDS, SPEC_FIELDS]
    assert [job["command"] for job in out] == ["a", "b"]
    assert out[0] == show(store, out[0]["id"])


def test_unique_key_returns_the_existing_job(cli: Cli, store: Store) -> None:
    assert enqueue(cli, "--id", "first", "--unique-key", "nightly", "--command", "true") == [
        "first"
    ]
    assert enqueue(cli, "--id", "second", "--unique-key", "nightly", "--command", "x") == ["first"]
    assert ids(store) == ["first"]


def test_duplicate_id_is_refused(cli: Cli, store: Store) -> None:
    enqueue(cli, "--id", "a", "--command", "true")
    result = cli("enqueue", "--id", "a", "--command", "false")
    assert result.returncode == 1
    assert result.stderr == "error: job 'a' already exists\n"
    assert show(store, "a")["command"] == "true"


# -- list, show, status


def test_list_newest_first_with_filters(cli: Cli, store: Store) -> None:
    for n in range(5):
        enqueue(
            cli, "--id", f"j{n}", "--queue", "even" if n % 2 == 0 else "odd", "--command", "true"
        )
    make(store, "done", "completed")
    assert cli_ids(cli) == ["done", "j4", "j3", "j2", "j1", "j0"]
    assert cli_ids(cli, "--queue", "even") == ["j4", "j2", "j0"]
    assert cli_ids(cli, "--state", "completed") == ["done"]
    assert cli_ids(cli, "--state", "pending", "--queue", "odd") == ["j3", "j1"]
    assert [j["id"] for j in json.loads(ok(cli("list", "--json", "--limit", "2")))] == [
        "done",
        "j4",
    ]
    assert json.loads(ok(cli("list", "--json", "--state", "dead"))) == []
    listed = json.loads(ok(cli("list", "--json")))
    assert all(list(job) == SPEC_FIELDS for job in listed)
    assert {**listed[1], "history": []} == cli_show(cli, "j4")


def test_list_default_limit_is_50(cli: Cli) -> None:
    enqueue(cli, "--file", "-", input="\n".join('{"command":"true"}' for _ in range(60)))
    assert len(json.loads(ok(cli("list", "--json")))) == 50
    assert len(cli_ids(cli)) == 60


def test_list_and_show_as_text(cli: Cli) -> None:
    enqueue(cli, "--id", "textjob", "--command", "echo text")
    table = ok(cli("list"))
    assert "textjob" in table
    assert "pending" in table
    text = ok(cli("show", "textjob"))
    assert "echo text" in text
    assert "textjob" in text
    empty = cli("list", "--state", "dead")
    assert (empty.returncode, empty.stdout) == (0, "")


def test_status_json(cli: Cli, store: Store) -> None:
    make(store, "c1", "completed", queue="other")
    make(store, "d1", "dead", queue="other")
    enqueue(cli, "--id", "p1", "--command", "true")
    enqueue(cli, "--id", "p2", "--queue", "other", "--command", "true")
    status = json.loads(ok(cli("status", "--json")))
    assert list(status) == ["counts", "queues", "runners", "done_last_minute", "progress"]
    assert status["counts"] == {**dict.fromkeys(STATES, 0), "pending": 2, "completed": 1, "dead": 1}
    assert status["queues"] == {
        "default": {**dict.fromkeys(STATES, 0), "pending": 1},
        "other": {**dict.fromkeys(STATES, 0), "pending": 1, "completed": 1, "dead": 1},
    }
    assert status["runners"] == []
    assert status["done_last_minute"] == 1


def test_status_json_of_an_empty_queue(cli: Cli) -> None:
    status = json.loads(ok(cli("status", "--json")))
    assert status == {
        "counts": dict.fromkeys(STATES, 0),
        "queues": {},
        "runners": [],
        "done_last_minute": 0,
        "progress": [],
    }
    assert ok(cli("status"))


def test_status_lists_live_runners(cli: Cli, store: Store) -> None:
    before = store.now()
    register_live(store, "runner-1", workers=3, at_ms=0)
    after = store.now()
    enqueue(cli, "--id", "r", "--command", "true")
    store.finish_and_claim("runner-1", [], 1, None, 30)
    [runner] = json.loads(ok(cli("status", "--json")))["runners"]
    spec_keys = {"id", "host", "pid", "workers", "started_at", "heartbeat_at", "running"}
    assert spec_keys <= set(runner)
    assert (runner["id"], runner["host"], runner["pid"], runner["workers"], runner["running"]) == (
        "runner-1",
        host_name(),
        os.getpid(),
        3,
        ["r"],
    )
    assert before <= parse_iso(runner["started_at"]) <= after  # the store's clock stamps it
    assert "runner-1" not in ok(cli("status"))  # the table shows hosts and pids
    assert str(os.getpid()) in ok(cli("status"))


# -- cancel


def test_cancel(cli: Cli, store: Store) -> None:
    enqueue(cli, "--id", "a", "--command", "true")
    enqueue(cli, "--id", "b", "--command", "true")
    result = cli("cancel", "a", "b")
    ok(result)
    assert "cancelled a" in result.stderr
    job = show(store, "a")
    assert (job["state"], job["last_error"]) == ("cancelled", "cancelled")
    again = cli("cancel", "a")  # what the user asked for already holds: no error
    assert (again.returncode, again.stderr) == (0, "a was already cancelled\n")
    job = show(store, "a")
    assert (job["state"], job["last_error"]) == ("cancelled", "cancelled")


# -- config


def test_config_list_get_set(cli: Cli, store: Store) -> None:
    values = json.loads(ok(cli("config", "list", "--json")))
    assert values == {
        "max_retries": 3,
        "backoff_base": 2,
        "backoff_max": 3600,
        "backoff_jitter": 0,
        "job_timeout": 0,
        "lease_seconds": 30,
        "output_limit": 65536,
        "retain_completed": 604800,
        "retain_dead": 0,
        "retry_not_runnable": 0,
        "retain_audit": 7776000,
    }
    assert ok(cli("config", "get", "max_retries")) == "3\n"
    assert ok(cli("config", "get", "max-retries")) == "3\n"
    set_result = cli("config", "set", "max-retries", "5")
    assert (ok(set_result), set_result.stderr) == ("", "max_retries = 5\n")
    assert ok(cli("config", "get", "max_retries")) == "5\n"
    ok(cli("config", "set", "backoff_jitter", "0.25"))
    ok(cli("config", "set", "job-timeout", "5m"))
    ok(cli("config", "set", "backoff_max", "500ms"))
    values = json.loads(ok(cli("config", "list", "--json")))
    assert (values["backoff_jitter"], values["job_timeout"], values["backoff_max"]) == (
        0.25,
        300,
        0.5,
    )
    assert ok(cli("config", "get", "job_timeout")) == "300\n"
    assert ok(cli("config", "get", "backoff_jitter", "--json")) == "0.25\n"
    table = ok(cli("config", "list"))
    assert "lease_seconds" in table
    # A new job takes the configured default.
    [job_id] = enqueue(cli, "--command", "true")
    assert show(store, job_id)["max_retries"] == 5


@pytest.mark.parametrize(
    "args",
    [
        ("set", "max_retries", "-1"),
        ("set", "max_retries", "abc"),
        ("set", "backoff_base", "0.5"),
        ("set", "backoff_jitter", "2"),
        ("set", "lease_seconds", "0"),
        ("set", "nope", "1"),
        ("get", "nope"),
        ("set", "max_retries"),
        ("frobnicate",),
    ],
)
def test_config_refusals_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli("config", *args)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert json.loads(ok(cli("config", "list", "--json")))["max_retries"] == 3


# -- the dead-letter queue


@pytest.mark.parametrize("spelling", [("dlq", "list"), ("dlq:list",)])
def test_dlq_list(cli: Cli, store: Store, spelling: tuple[str, ...]) -> None:
    make(store, "d1", "dead")
    make(store, "d2", "dead")
    make(store, "ok", "completed")
    dead = json.loads(ok(cli(*spelling, "--json")))
    assert [job["id"] for job in dead] == ["d2", "d1"]
    assert all(list(job) == SPEC_FIELDS for job in dead)
    assert dead[0]["last_error"] == "exit code 1"
    assert "d1" in ok(cli(*spelling))


@pytest.mark.parametrize("spelling", [("dlq", "retry"), ("dlq:retry",)])
def test_dlq_retry(cli: Cli, store: Store, spelling: tuple[str, ...]) -> None:
    make(store, "d1", "dead")
    make(store, "d2", "dead")
    make(store, "d3", "dead")
    assert ok(cli(*spelling, "d1")) == "d1\n"
    job = show(store, "d1")
    assert (job["state"], job["attempts"], job["finished_at"]) == ("pending", 0, None)
    assert ok(cli(*spelling, "--all")) == "d2\nd3\n"
    assert json.loads(ok(cli("dlq", "list", "--json"))) == []
    nothing = cli(*spelling)
    assert nothing.returncode == 2
    assert nothing.stderr.startswith("error: ")


def test_dlq_purge(cli: Cli, store: Store) -> None:
    make(store, "d1", "dead")
    make(store, "keep", "completed")
    refused = cli("dlq", "purge")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert ids(store) == ["keep", "d1"]
    ok(cli("dlq", "purge", "--yes"))
    assert ids(store) == ["keep"]


# -- purge


def test_purge_by_state_and_age(cli: Cli, target: str, store: Store) -> None:
    past = open_store(target, FakeClock(now_ms() - 3 * 86400_000))
    try:
        make(past, "old-done", "completed")
        make(past, "old-dead", "dead")
        make(past, "old-pending", "pending")
    finally:
        past.close()
    make(store, "new-done", "completed")
    result = cli("purge", "--state", "completed", "--older-than", "2d", "--yes")
    ok(result)
    assert result.stderr == "purged 1 job\n"
    assert ids(store) == ["new-done", "old-pending", "old-dead"]
    ok(cli("purge", "--state", "completed", "--yes"))
    assert ids(store) == ["old-pending", "old-dead"]
    ok(cli("purge", "--state", "dead", "--older-than", "7d", "-y"))
    assert ids(store) == ["old-pending", "old-dead"]
    ok(cli("purge", "--state", "dead", "--older-than", "1d", "-y"))
    assert ids(store) == ["old-pending"]


def test_purge_refuses_without_yes_when_stdin_is_not_a_terminal(cli: Cli, store: Store) -> None:
    make(store, "done", "completed")
    result = cli("purge", "--state", "completed", stdin=subprocess.DEVNULL)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert "--yes" in result.stderr
    assert ids(store) == ["done"]


# -- where the queue lives


def test_db_option_and_environment(tmp_path: Path, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("file targets only")
    env_db, option_db = tmp_path / "env.db", tmp_path / "opt" / "option.db"

    def run(*args: str) -> str:
        env = {**os.environ, "QUEUECTL_DB": str(env_db)}
        result = subprocess.run(
            [QUEUECTL, *args], capture_output=True, text=True, env=env, timeout=60
        )
        return ok(result)

    run("enqueue", "--id", "in-env", "--command", "true")
    run("--db", str(option_db), "enqueue", "--id", "in-option", "--command", "true")
    run("--db", f"sqlite:///{option_db}", "enqueue", "--id", "in-url", "--command", "true")
    assert [j["id"] for j in json.loads(run("list", "--json"))] == ["in-env"]
    assert [j["id"] for j in json.loads(run("--db", str(option_db), "list", "--json"))] == [
        "in-url",
        "in-option",
    ]
    assert str(option_db) in run("--db", str(option_db), "init")


def test_default_location_is_under_xdg_data_home(tmp_path: Path, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("file targets only")
    env = {k: v for k, v in os.environ.items() if k != "QUEUECTL_DB"}
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    result = subprocess.run(
        [QUEUECTL, "enqueue", "--command", "true"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    ok(result)
    assert (tmp_path / "data" / "queuectl" / "queue.db").is_file()


def test_init_is_idempotent(cli: Cli) -> None:
    first = ok(cli("init"))
    assert ok(cli("init")) == first
