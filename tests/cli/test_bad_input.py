"""Bad input gets its exit code, one `error:` line on stderr, no traceback, and changes nothing."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl.store import Store
from tests.cli.conftest import dump, make
from tests.support.cli import QUEUECTL, assert_clean_error, run

Cli = Callable[..., subprocess.CompletedProcess[str]]

GOOD = '{"command":"true"}'
BAD_LINE = '{"command":"true","priority":"high"}'
#: A job nested deeper than JSON's parser can recurse (and shorter than one argv string may be)
DEEP = '{"command":"true","env":' + "[" * 50_000 + "]" * 50_000 + "}"

#: (name, argv, stdin, exit code)
CASES: list[tuple[str, list[str], str | bytes | None, int]] = [
    ("malformed-json", ["enqueue", '{"command": "true"'], None, 2),
    ("json-not-an-object", ["enqueue", '"echo hi"'], None, 2),
    ("json-array-of-strings", ["enqueue", '["echo hi"]'], None, 2),
    ("missing-command", ["enqueue", '{"id":"x"}'], None, 2),
    ("empty-command", ["enqueue", '{"command":""}'], None, 2),
    ("blank-command-option", ["enqueue", "--command", "   "], None, 2),
    ("empty-dashdash", ["enqueue", "--"], None, 2),
    ("nothing-to-enqueue", ["enqueue"], None, 2),
    ("two-ways-at-once", ["enqueue", "--command", "true", GOOD], None, 2),
    ("unknown-field", ["enqueue", '{"command":"true","retries":3}'], None, 2),
    ("command-too-long", ["enqueue", "--file", "-"], '{"command":"' + "x" * 65537 + '"}', 2),
    ("negative-max-retries", ["enqueue", "--max-retries", "-1", "--command", "true"], None, 2),
    ("non-integer-priority", ["enqueue", "--priority", "high", "--command", "true"], None, 2),
    ("float-priority-in-json", ["enqueue", '{"command":"true","priority":1.5}'], None, 2),
    ("bool-max-retries-in-json", ["enqueue", '{"command":"true","max_retries":true}'], None, 2),
    ("command-with-nul", ["enqueue", '{"command":"a\\u0000b"}'], None, 2),
    ("command-not-utf8", ["enqueue", "--command", "echo \udcff"], None, 2),
    ("command-lone-surrogate", ["enqueue", '{"command":"echo \\ud800"}'], None, 2),
    ("env-not-utf8", ["enqueue", "--env", "A=\udcff", "--command", "true"], None, 2),
    ("env-value-not-string", ["enqueue", '{"command":"true","env":{"A":1}}'], None, 2),
    ("json-number", ["enqueue", "42"], None, 2),
    ("float-max-retries", ["enqueue", "--max-retries", "1.5", "--command", "true"], None, 2),
    ("huge-priority", ["enqueue", "--priority", "99999999999", "--command", "true"], None, 2),
    ("huge-delay", ["enqueue", "--delay", "99999999999d", "--command", "true"], None, 2),
    (
        "run-at-out-of-range",
        ["enqueue", "--run-at", "0001-01-01T00:00:00+14:00", "-c", "x"],
        None,
        2,
    ),
    ("bad-id", ["enqueue", "--id", "has space", "--command", "true"], None, 2),
    ("id-too-long", ["enqueue", "--id", "x" * 129, "--command", "true"], None, 2),
    ("bad-queue", ["enqueue", "--queue", "a/b", "--command", "true"], None, 2),
    ("bad-timeout", ["enqueue", "--timeout", "soon", "--command", "true"], None, 2),
    ("negative-delay", ["enqueue", "--delay", "-5s", "--command", "true"], None, 2),
    ("bad-run-at", ["enqueue", "--run-at", "next tuesday", "--command", "true"], None, 2),
    (
        "run-at-and-delay",
        ["enqueue", "--run-at", "2030-01-01", "--delay", "1s", "-c", "true"],
        None,
        2,
    ),
    ("bad-env", ["enqueue", "--env", "NOEQUALS", "--command", "true"], None, 2),
    ("bad-env-name", ["enqueue", "--env", "1X=1", "--command", "true"], None, 2),
    ("bad-no-retry-code", ["enqueue", "--no-retry-exit-code", "300", "--command", "true"], None, 2),
    ("after-unknown-job", ["enqueue", "--after", "ghost", "--command", "true"], None, 2),
    ("empty-file", ["enqueue", "--file", "-"], "", 2),
    ("empty-array", ["enqueue", "--file", "-"], "[]", 2),
    ("batch-bad-line", ["enqueue", "--file", "-"], f"{GOOD}\n{GOOD}\n{BAD_LINE}\n{GOOD}\n", 2),
    ("batch-malformed-line", ["enqueue", "--file", "-"], f"{GOOD}\n{{oops\n{GOOD}\n", 2),
    ("batch-array-bad-item", ["enqueue", "--file", "-"], f"[{GOOD}, {BAD_LINE}]", 2),
    ("batch-line-not-object", ["enqueue", "--file", "-"], f"{GOOD}\n[1]\n", 2),
    ("missing-file", ["enqueue", "--file", "/nonexistent/jobs.json"], None, 2),
    ("file-is-a-directory", ["enqueue", "--file", "/"], None, 2),
    ("file-not-utf8", ["enqueue", "--file", "-"], b'{"command":"echo \xff"}\n', 2),
    ("duplicate-id", ["enqueue", '{"id":"existing","command":"true"}'], None, 1),
    ("concurrency-zero", ["queue", "set", "q", "--concurrency", "0"], None, 2),
    ("concurrency-negative", ["queue", "set", "q", "--concurrency", "-1"], None, 2),
    ("concurrency-fraction", ["queue", "set", "q", "--concurrency", "1.5"], None, 2),
    ("concurrency-huge", ["queue", "set", "q", "--concurrency", "9" * 20], None, 2),
    ("concurrency-fullwidth", ["queue", "set", "q", "--concurrency", "\uff12"], None, 2),
    ("rate-zero-jobs", ["queue", "set", "q", "--rate", "0/1s"], None, 2),
    ("rate-zero-window", ["queue", "set", "q", "--rate", "5/0s"], None, 2),
    ("rate-under-a-ms", ["queue", "set", "q", "--rate", "5/0.4ms"], None, 2),
    ("rate-negative-window", ["queue", "set", "q", "--rate", "5/-1s"], None, 2),
    ("rate-huge-window", ["queue", "set", "q", "--rate", "5/99999999999999d"], None, 2),
    ("rate-huge-jobs", ["queue", "set", "q", "--rate", "9" * 20 + "/1s"], None, 2),
    ("rate-fullwidth", ["queue", "set", "q", "--rate", "\uff15/1s"], None, 2),
    ("rate-no-slash", ["queue", "set", "q", "--rate", "5"], None, 2),
    ("queue-set-nothing", ["queue", "set", "q"], None, 2),
    ("lock-empty", ["enqueue", "--lock", "", "--command", "true"], None, 2),
    ("lock-with-nul", ["enqueue", '{"command":"true","lock":"a\\u0000b"}'], None, 2),
    (
        "duplicate-id-in-batch",
        ["enqueue", "--file", "-"],
        '{"id":"n1","command":"a"}\n{"id":"existing","command":"b"}\n',
        1,
    ),
    (
        "duplicate-id-twice-in-batch",
        ["enqueue", "--file", "-"],
        '{"id":"n1","command":"a"}\n{"id":"n1","command":"b"}\n',
        1,
    ),
    ("json-nested-too-deep", ["enqueue", DEEP], None, 2),
    ("json-lines-nested-too-deep", ["enqueue", "--file", "-"], f"{GOOD}\n{DEEP}\n", 2),
    ("json-array-nested-too-deep", ["enqueue", "--file", "-"], f"[{GOOD},{DEEP}]", 2),
    ("json-file-nested-too-deep", ["enqueue", "--file", "-"], DEEP.replace(",", ",\n"), 2),
    ("hook-json-nested-too-deep", ["hook", "add", "h", "--on", "completed", DEEP], None, 2),
    ("schedule-json-nested-too-deep", ["schedule", "add", "s", "--every", "1m", DEEP], None, 2),
    ("cron-never-comes", ["schedule", "add", "s", "--cron", "0 0 31 2 *", "-c", "x"], None, 2),
    (
        "cron-never-comes-tz",
        ["schedule", "add", "s", "--cron", "0 0 30 2 *", "--tz", "Europe/Paris", "-c", "x"],
        None,
        2,
    ),
    (
        "cron-never-comes-april-31",
        ["schedule", "add", "s", "--cron", "0 0 31 4,6 *", "-c", "x"],
        None,
        2,
    ),
    ("show-unknown", ["show", "ghost"], None, 1),
    ("show-unknown-json", ["show", "ghost", "--json"], None, 1),
    ("logs-unknown", ["logs", "ghost"], None, 1),
    ("cancel-unknown", ["cancel", "ghost"], None, 1),
    ("cancel-one-unknown", ["cancel", "existing", "ghost"], None, 1),
    ("cancel-finished", ["cancel", "done"], None, 1),
    ("cancel-bad-id", ["cancel", "bad id"], None, 2),
    ("dlq-retry-not-dead", ["dlq", "retry", "existing"], None, 1),
    ("dlq-retry-one-not-dead", ["dlq:retry", "dead1", "existing"], None, 1),
    ("dlq-retry-unknown", ["dlq", "retry", "ghost"], None, 1),
    ("dlq-retry-ids-and-all", ["dlq", "retry", "dead1", "--all"], None, 2),
    ("list-bad-state", ["list", "--state", "sleeping"], None, 2),
    ("list-negative-limit", ["list", "--limit", "-1"], None, 2),
    ("purge-active-state", ["purge", "--state", "pending", "--yes"], None, 2),
    ("purge-bad-age", ["purge", "--state", "completed", "--older-than", "old", "--yes"], None, 2),
    ("purge-without-yes", ["purge", "--state", "completed"], None, 2),
    ("dlq-purge-without-yes", ["dlq", "purge"], None, 2),
    ("config-bad-integer", ["config", "set", "max_retries", "three"], None, 2),
    ("config-out-of-range", ["config", "set", "max_retries", "101"], None, 2),
    ("config-bad-duration", ["config", "set", "lease_seconds", "-1s"], None, 2),
    ("config-bad-fraction", ["config", "set", "backoff_jitter", "1.01"], None, 2),
    ("config-unknown-key-set", ["config", "set", "colour", "blue"], None, 2),
    ("config-unknown-key-get", ["config", "get", "colour"], None, 2),
    ("unknown-command", ["frobnicate"], None, 2),
    ("unknown-option", ["list", "--colour"], None, 2),
    ("bad-db-scheme", ["--db", "mysql://x/y", "list"], None, 2),
]


@pytest.fixture
def seeded(store: Store) -> str:
    """A store with a pending, a completed and a dead job, and a config change; its dump."""
    make(store, "existing", "pending")
    make(store, "done", "completed")
    make(store, "dead1", "dead")
    store.set_config("max_retries", 4)
    return dump(store)


@pytest.mark.parametrize(
    ("argv", "stdin", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input(
    cli: Cli,
    target: str,
    store: Store,
    seeded: str,
    argv: list[str],
    stdin: str | bytes | None,
    code: int,
) -> None:
    if isinstance(stdin, bytes):  # not text: past the fixture's text mode
        env = {**os.environ, "QUEUECTL_DB": target}
        raw = subprocess.run(
            [QUEUECTL, *argv], input=stdin, capture_output=True, env=env, timeout=60
        )
        result = subprocess.CompletedProcess(
            raw.args, raw.returncode, raw.stdout.decode(), raw.stderr.decode()
        )
    else:
        result = cli(*argv, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert dump(store) == seeded


def test_bad_db_file_is_one_line(cli: Cli, tmp_path: Path, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("file targets only")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    for target, code in ((str(junk), 1), (str(tmp_path), 1)):
        result = cli("--db", target, "list")
        assert result.returncode == code
        assert len(result.stderr.splitlines()) == 1
        assert result.stderr.startswith("error: ")
    assert junk.read_bytes() == b"this is not a database" * 100


@pytest.mark.parametrize("value", ["abc", "0", "-1", "nan", "inf"])
def test_a_bad_poll_interval_stops_the_runner_before_the_store_is_touched(
    tmp_path: Path, value: str
) -> None:
    # Zero or less would spin the runner's loop; the refusal comes before the file exists.
    db = tmp_path / "queue.db"
    result = run(["--db", str(db), "worker", "start"], env={"QUEUECTL_POLL_S": value}, timeout=30)
    line = assert_clean_error(result, 2, "QUEUECTL_POLL_S")
    assert repr(value) in line
    assert not db.exists()
