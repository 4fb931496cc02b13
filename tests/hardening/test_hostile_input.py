"""Hostile input: fuzzed job JSON, durations, times and ids, in process and through the real
CLI, and the awkward cases a user will one day type (NUL bytes, bytes that are not UTF-8,
a 64 KiB command, a job printing a million lines, ids that look like options).

Every refusal is an InvalidInputError (exit 2, one `error:` line); nothing raises anything
else, and nothing prints a traceback.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from queuectl import Queue
from queuectl.cli.jobinput import parse_jobs_text
from queuectl.durations import MAX_DURATION_S, parse_duration, parse_iso
from queuectl.errors import InvalidInputError, QueuectlError
from queuectl.models import ID_PATTERN, MAX_COMMAND_BYTES, NEW_JOB_FIELDS, new_job, validate_id
from tests.support.cli import QUEUECTL, assert_clean_error, run

FIELDS = sorted(NEW_JOB_FIELDS)
NASTY_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ud800",
            "\udcff",
            "-1",
            "--help",
            "a" * 129,
            "é",
            "😀",
            "1e999",
            "NaN",
            "-0",
            "0x10",
            "1_000",
            "\uff13",
            "\u0663",
            "9" * 400,
            "true",
            "null",
            "{}",
            "[]",
        ]
    ),
)
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    NASTY_TEXT,
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(NASTY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
ID = st.from_regex(r"\A[A-Za-z0-9._:\-]{1,20}\Z")
DURATION = st.one_of(
    st.floats(min_value=0, max_value=1e10), st.from_regex(r"\A\d{1,4}(\.\d)?(ms|s|m|h|d)?\Z")
)
#: Values of the right kind, so that validation gets past the first field (with edges).
PLAUSIBLE = {
    "id": ID,
    "queue": ID,
    "priority": st.integers(-(2**31) - 1, 2**31),
    "max_retries": st.integers(-1, 101),
    "timeout": DURATION,
    "delay": DURATION,
    "run_at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    "depends_on": st.one_of(ID, st.lists(ID, max_size=3)),
    "no_retry_exit_codes": st.lists(st.integers(-1, 256), max_size=3),
    "unique_key": NASTY_TEXT,
    "cwd": st.sampled_from(["/tmp", "relative/dir", "/no/such/dir", "~"]),
    "env": st.dictionaries(
        st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,5}\Z"), NASTY_TEXT, max_size=3
    ),
}
#: A job object: mostly plausible fields (so validation goes deep), sometimes anything.
JOB = st.fixed_dictionaries(
    {"command": st.one_of(st.just("echo hi"), NASTY_TEXT, JSON_VALUE)},
    optional={
        **{
            name: st.one_of(plausible, plausible, JSON_VALUE)
            for name, plausible in PLAUSIBLE.items()
        },
        "unknown": JSON_VALUE,
    },
)


def fast(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )


def one_line(exc: QueuectlError, *codes: int, word: str = "") -> None:
    """A refusal a user can read: one non-empty line, naming `word`, with an expected code."""
    assert str(exc)
    assert "\n" not in str(exc)
    assert word in str(exc)
    assert exc.exit_code in (codes or (2,)), exc


def validate_text(text: str) -> list[Any]:
    """What the CLI does with `enqueue JSON` before the store: parse, then validate each job."""
    return [new_job(item, f"job {n}", "/tmp") for n, item in enumerate(parse_jobs_text(text), 1)]


# -- in process


@fast(600)
@given(st.text(max_size=200))
def test_any_text_as_jobs_is_parsed_or_refused(text: str) -> None:
    try:
        validate_text(text)
    except InvalidInputError as exc:
        one_line(exc)


@fast(800)
@given(st.one_of(JOB, st.lists(JOB, max_size=3), JSON_VALUE), st.sampled_from(["json", "lines"]))
def test_fuzzed_job_json_is_validated_or_refused(data: Any, form: str) -> None:
    if form == "lines" and isinstance(data, list):
        text = "\n".join(json.dumps(item) for item in data)
    else:
        text = json.dumps(data)
    try:
        jobs = validate_text(text)
    except InvalidInputError as exc:
        one_line(exc)
        event("refused")
        return
    event("accepted")
    for job in jobs:
        assert job.command.strip()
        assert len(job.command.encode("utf-8")) <= MAX_COMMAND_BYTES
        assert "\x00" not in job.command
        assert job.id is None or ID_PATTERN.fullmatch(job.id)
        assert job.timeout is None or 0 <= job.timeout <= MAX_DURATION_S  # 0: none


@pytest.fixture(scope="module")
def scratch_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Queue]:
    with Queue(str(tmp_path_factory.mktemp("fuzz") / "queue.db")) as q:
        yield q


@fast(250)
@given(st.lists(JOB, min_size=1, max_size=3))
def test_fuzzed_jobs_that_validate_are_stored_and_read_back(
    scratch_queue: Queue, jobs: list[dict[str, Any]]
) -> None:
    try:
        created = scratch_queue.enqueue_many(json.loads(json.dumps(jobs)))
    except QueuectlError as exc:
        # invalid input, a dependency that does not exist, or an id already taken
        one_line(exc, 1, 2)
        event(f"refused with exit {exc.exit_code}")
        return
    event("stored")
    for job in created:
        stored = scratch_queue.get(job.id)
        json.dumps(stored.to_dict())
        assert stored.command == job.command


@fast(1500)
@given(
    st.one_of(
        NASTY_TEXT,
        st.from_regex(r"\A\s?-?\d{0,20}(\.\d{0,6})?(ms|s|m|h|d|us|w|S)?\s?\Z"),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.booleans(),
    )
)
def test_durations_are_seconds_or_refused(value: Any) -> None:
    try:
        seconds = parse_duration(value)
    except InvalidInputError as exc:
        one_line(exc, word="duration")
        return
    assert isinstance(seconds, float)
    assert math.isfinite(seconds)
    assert 0 <= seconds <= MAX_DURATION_S


@fast(1500)
@given(
    st.one_of(
        NASTY_TEXT,
        st.from_regex(
            r"\A[+-]?\d{1,6}-\d{1,2}-\d{1,2}([T ]\d{1,2}(:\d{1,2}(:\d{1,2}(\.\d{1,9})?)?)?)?"
            r"(Z|z|[+-]\d{2}(:?\d{2}(:?\d{2})?)?)?\Z"
        ),
        st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        JSON_LEAF,
    )
)
def test_times_are_milliseconds_or_refused(value: Any) -> None:
    try:
        ms = parse_iso(value, "run_at")
    except InvalidInputError as exc:
        one_line(exc, word="run_at")
        return
    assert isinstance(ms, int)


@fast(1000)
@given(st.one_of(NASTY_TEXT, st.from_regex(r"\A[A-Za-z0-9._:\-]{0,130}\Z"), JSON_LEAF))
def test_ids_match_the_pattern_or_are_refused(value: Any) -> None:
    valid = isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
    try:
        assert validate_id(value) == value
    except InvalidInputError:
        assert not valid
    else:
        assert valid


@fast(300)
@given(NASTY_TEXT)
def test_lookups_by_any_id_are_not_found_or_refused(scratch_queue: Queue, job_id: str) -> None:
    for lookup in (
        scratch_queue.get,
        scratch_queue.output,
        scratch_queue.cancel,
        scratch_queue.retry,
        scratch_queue.remove_schedule,
        lambda name: scratch_queue.list(queue=name),
    ):
        try:
            lookup(job_id)
        except QueuectlError as exc:
            one_line(exc, 1, 2)


# -- through the real CLI


@settings(max_examples=30, deadline=None, database=None, derandomize=True)
@given(st.one_of(JOB, st.lists(JOB, min_size=1, max_size=2)))
def test_fuzzed_enqueue_through_the_cli(
    tmp_path_factory: pytest.TempPathFactory, data: Any
) -> None:
    db = str(tmp_path_factory.getbasetemp() / "cli-fuzz.db")
    text = json.dumps(data)
    try:
        validate_text(text)
        expected = 0
    except InvalidInputError:
        expected = 2
    result = run(["--db", db, "enqueue", text])
    if expected == 2:
        assert_clean_error(result, 2)
    else:  # valid JSON; the store may still refuse a duplicate id or unknown dependency
        assert result.returncode in (0, 1), result.stderr
        if result.returncode:
            assert_clean_error(result, 1)
        assert "Traceback" not in result.stderr


def test_nul_bytes_are_refused(tmp_path: Path) -> None:
    db = str(tmp_path / "queue.db")
    assert run(["--db", db, "init"]).returncode == 0
    assert_clean_error(run(["--db", db, "enqueue", '{"command": "echo a\\u0000b"}']), 2, "NUL")
    for line in (
        '{"command": "true", "env": {"A": "x\\u0000"}}',
        '{"command": "true", "cwd": "/tmp/\\u0000"}',
        '{"command": "true", "unique_key": "k\\u0000"}',
        '{"command": "a\x00b"}',  # a raw NUL byte: not even valid JSON
    ):
        assert_clean_error(run(["--db", db, "enqueue", "--file", "-"], input=line + "\n"), 2)
    assert run(["--db", db, "list", "--json"]).stdout.strip() == "[]"


def test_command_size_limit(tmp_path: Path) -> None:
    db = str(tmp_path / "queue.db")
    exact = "echo " + "x" * (MAX_COMMAND_BYTES - 5)
    result = run(["--db", db, "enqueue", "--id", "big", "--command", exact])
    assert result.returncode == 0, result.stderr
    shown = json.loads(run(["--db", db, "show", "--json", "big"]).stdout)
    assert shown["command"] == exact
    assert_clean_error(run(["--db", db, "enqueue", "--command", exact + "x"]), 2, "65536")
    # multi-byte characters count as bytes
    wide = "é" * (MAX_COMMAND_BYTES // 2) + "x"
    assert_clean_error(
        run(["--db", db, "enqueue", "--file", "-"], input=json.dumps({"command": wide})), 2
    )


def test_bytes_that_are_not_utf8_in_arguments(tmp_path: Path) -> None:
    db = str(tmp_path / "queue.db")
    bad = os.fsdecode(b"\xff\xfe")
    for args in (
        ["show", bad],
        ["logs", bad],
        ["explain", bad],
        ["cancel", bad],
        ["wait", bad],
        ["list", "--queue", bad],
        ["dlq", "retry", bad],
        ["schedule", "remove", bad],
        ["enqueue", "--command", bad],
        ["enqueue", "--id", bad, "--command", "true"],
        ["enqueue", "--command", "true", "--env", f"A={bad}"],
        ["enqueue", "--", "echo", bad],
    ):
        assert_clean_error(run(["--db", db, *args], timeout=20), 2)


def test_ids_that_look_like_options(tmp_path: Path) -> None:
    db = str(tmp_path / "queue.db")
    for job_id in ("-1", "--help", "-h", "--"):
        added = run(["--db", db, "enqueue", f"--id={job_id}", "--command", "true"])
        assert added.stdout == f"{job_id}\n", added.stderr
        shown = run(["--db", db, "show", "--json", "--", job_id])
        assert json.loads(shown.stdout)["id"] == job_id, shown.stderr
        assert run(["--db", db, "explain", "--", job_id]).returncode == 0
        assert run(["--db", db, "logs", "--", job_id]).returncode == 0
        cancelled = run(["--db", db, "cancel", "--", job_id])
        assert cancelled.returncode == 0, cancelled.stderr
    # Without `--`, an id that looks like an option is a usage error, not a lookup.
    assert_clean_error(run(["--db", db, "show", "-1"]), 2, "-1")
    assert run(["--db", db, "enqueue", "--id", "-1", "--command", "true"]).returncode == 1  # taken


def test_hostile_output_through_a_runner(tmp_path: Path) -> None:
    """Output that is not UTF-8, and a million lines: stored (the tail, capped), shown, and
    the runner carries on."""
    db = str(tmp_path / "queue.db")
    jobs = [
        {"id": "binary", "command": r"printf '\377\376 not utf-8 \200\n'"},
        {"id": "flood", "command": "seq 1 1000000"},
        {"id": "after", "command": "echo still here"},
    ]
    assert run(["--db", db, "enqueue", "--file", "-"], input=json.dumps(jobs)).returncode == 0
    runner = subprocess.Popen(
        [QUEUECTL, "--db", db, "worker", "start", "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        waited = run(
            ["--db", db, "wait", "binary", "flood", "after", "--timeout", "60s"], timeout=90
        )
        assert waited.returncode == 0, waited.stderr
    finally:
        runner.send_signal(signal.SIGTERM)
        _, log = runner.communicate(timeout=30)
    assert runner.returncode == 0
    assert b"Traceback" not in log

    raw = run(["--db", db, "logs", "binary"], text=False)
    assert raw.returncode == 0
    assert raw.stdout == b"\xff\xfe not utf-8 \x80\n"
    for args in (["show", "binary"], ["show", "--json", "binary"], ["list", "--json"], ["status"]):
        shown = run(["--db", db, *args])
        assert shown.returncode == 0, (args, shown.stderr)
        assert "Traceback" not in shown.stderr

    flood = run(["--db", db, "logs", "flood"], text=False)
    limit = int(run(["--db", db, "config", "get", "output_limit"]).stdout)
    marker, _, tail = flood.stdout.partition(b"\n")
    assert marker.startswith(b"[queuectl: ")
    assert marker.endswith(b" earlier bytes dropped]")
    assert 0 < len(tail) <= limit
    assert tail.endswith(b"999999\n1000000\n")
    states = {
        job["id"]: job["state"] for job in json.loads(run(["--db", db, "list", "--json"]).stdout)
    }
    assert states == {"binary": "completed", "flood": "completed", "after": "completed"}
