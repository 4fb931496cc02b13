"""Validation of a new job, and the job's JSON shape."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from queuectl.durations import parse_iso
from queuectl.errors import InvalidInputError
from queuectl.models import MAX_COMMAND_BYTES, Job, new_job, validate_id
from tests.support.spec import SPEC_FIELDS


def bad(data: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        new_job(data)


# -- ids


@pytest.mark.parametrize(
    "job_id", ["a", "job1", "A.b_c:d-e", "0", "x" * 128, "2026-11-27T22:33:28.123Z"]
)
def test_valid_ids(job_id: str) -> None:
    assert validate_id(job_id) == job_id
    assert new_job({"id": job_id, "command": "true"}).id == job_id


@pytest.mark.parametrize(
    "job_id", ["", "x" * 129, "a b", "a/b", "é", "a\n", "a\x00", "$x", "a,b", 5, ["a"]]
)
def test_invalid_ids(job_id: object) -> None:
    bad({"id": job_id, "command": "true"}, "id")


def test_missing_id_is_generated_later() -> None:
    assert new_job({"command": "true"}).id is None
    assert new_job({"command": "true", "id": None}).id is None


@pytest.mark.parametrize("queue", ["", "a b", "x" * 129, 3])
def test_invalid_queue(queue: object) -> None:
    bad({"command": "true", "queue": queue}, "queue")


def test_queue_default_and_given() -> None:
    assert new_job({"command": "true"}).queue == "default"
    assert new_job({"command": "true", "queue": "emails"}).queue == "emails"


# -- command


def test_command_is_kept_as_given() -> None:
    assert new_job({"command": "  echo 'a  b' | wc -c "}).command == "  echo 'a  b' | wc -c "


@pytest.mark.parametrize("command", ["", " ", "\n\t", None, 5, ["echo", "hi"]])
def test_empty_or_non_string_command(command: object) -> None:
    bad({"command": command}, "command")


def test_missing_command() -> None:
    bad({"id": "a"}, "command: missing")


def test_command_with_nul() -> None:
    bad({"command": "echo a\x00b"}, "NUL")


@pytest.mark.parametrize("field", ["command", "env", "cwd", "unique_key"])
@pytest.mark.parametrize("text", ["echo \udcff", "echo " + chr(0xD800)])
def test_text_must_be_utf8(field: str, text: str) -> None:
    """A lone surrogate (an undecodable byte of argv, or a JSON escape) cannot be stored."""
    data: dict[str, Any] = {"command": "true"}
    data[field] = {"A": text} if field == "env" else text
    bad(data, field)


def test_non_ascii_text_is_fine() -> None:
    job = new_job({"command": "echo héllo ✓", "env": {"A": "é"}, "unique_key": "ключ"})
    assert (job.command, job.env, job.unique_key) == ("echo héllo ✓", {"A": "é"}, "ключ")


def test_command_size_limit_is_64_kib_in_bytes() -> None:
    assert new_job({"command": "x" * MAX_COMMAND_BYTES}).command
    bad({"command": "x" * (MAX_COMMAND_BYTES + 1)}, "longer than")
    # 2 bytes a character in UTF-8: half as many characters fit.
    assert new_job({"command": "é" * (MAX_COMMAND_BYTES // 2)}).command
    bad({"command": "é" * (MAX_COMMAND_BYTES // 2 + 1)}, "longer than")


# -- numbers


@pytest.mark.parametrize(
    ("given", "stored"), [(0, 0), (5, 5), (-5, -5), ("7", 7), (2**31 - 1, 2**31 - 1)]
)
def test_priority(given: object, stored: int) -> None:
    assert new_job({"command": "true", "priority": given}).priority == stored


@pytest.mark.parametrize("priority", [1.5, 1.0, "high", "", True, False, [1], 2**31, -(2**31)])
def test_invalid_priority(priority: object) -> None:
    bad({"command": "true", "priority": priority}, "priority")


@pytest.mark.parametrize(("given", "stored"), [(0, 0), (3, 3), (100, 100), ("2", 2)])
def test_max_retries(given: object, stored: int) -> None:
    assert new_job({"command": "true", "max_retries": given}).max_retries == stored


def test_max_retries_default_is_the_config() -> None:
    assert new_job({"command": "true"}).max_retries is None


@pytest.mark.parametrize("retries", [-1, 101, 1.5, "three", True, False, "-1"])
def test_invalid_max_retries(retries: object) -> None:
    bad({"command": "true", "max_retries": retries}, "max_retries")


# -- durations and times


@pytest.mark.parametrize(
    ("given", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        (12, 12.0),
        ("0", 0.0),  # no timeout, whatever job_timeout says
        (0, 0.0),
        ("0s", 0.0),
    ],
)
def test_timeout(given: object, seconds: float | None) -> None:
    assert new_job({"command": "true", "timeout": given}).timeout == seconds


@pytest.mark.parametrize("timeout", ["-1", -1, "soon", "5 moons", True, [5], "1e3"])
def test_invalid_timeout(timeout: object) -> None:
    bad({"command": "true", "timeout": timeout}, "timeout")


def test_delay() -> None:
    assert new_job({"command": "true", "delay": "2h"}).delay_s == 7200.0


@pytest.mark.parametrize("delay", ["-1s", "later", False])
def test_invalid_delay(delay: object) -> None:
    bad({"command": "true", "delay": delay}, "delay")


def test_run_at() -> None:
    job = new_job({"command": "true", "run_at": "2026-11-27T22:33:28.123Z"})
    assert job.run_at_ms == parse_iso("2026-11-27T22:33:28.123Z")


@pytest.mark.parametrize("run_at", ["next week", "2026-02-30T00:00:00Z", 1795818808, True])
def test_invalid_run_at(run_at: object) -> None:
    bad({"command": "true", "run_at": run_at}, "run_at")


def test_run_at_and_delay_exclude_each_other() -> None:
    bad({"command": "true", "run_at": "2026-11-27T22:33:28Z", "delay": "5s"}, "not both")


# -- env, cwd


def process_env() -> None:
    env = {"A": "1", "_b2": "", "PATH_X": "x=y z"}
    assert new_job({"command": "true", "env": env}).env == env


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"1A": "x"}, "variable name"),
        ({"A-B": "x"}, "variable name"),
        ({"": "x"}, "variable name"),
        ({"A B": "x"}, "variable name"),
        ({"A=B": "x"}, "variable name"),
        ({"A": 1}, "must be a string"),
        ({"A": None}, "must be a string"),
        ({"A": "a\x00b"}, "must be a string"),
        (["A=1"], "expected an object"),
        ("A=1", "expected an object"),
    ],
)
def test_invalid_env(env: object, match: str) -> None:
    bad({"command": "true", "env": env}, match)


def test_cwd_defaults_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert new_job({"command": "true"}).cwd == os.getcwd()
    assert new_job({"command": "true", "cwd": "sub"}).cwd == str(tmp_path / "sub")
    assert new_job({"command": "true", "cwd": "/srv"}).cwd == "/srv"


@pytest.mark.parametrize("cwd", ["", 5, "a\x00b"])
def test_invalid_cwd(cwd: object) -> None:
    bad({"command": "true", "cwd": cwd}, "cwd")


# -- unknown fields, non-objects


@pytest.mark.parametrize("field", ["state", "attempts", "created_at", "Command", "retries", "cmd"])
def test_unknown_fields_are_refused(field: str) -> None:
    bad({"command": "true", field: 1}, f"unknown field '{field}'")


@pytest.mark.parametrize("data", [[], "echo", 5, None])
def test_a_job_must_be_an_object(data: object) -> None:
    bad(data, "must be a JSON object")  # type: ignore[arg-type]


def test_errors_name_where() -> None:
    with pytest.raises(InvalidInputError, match=r"^line 3: priority"):
        new_job({"command": "true", "priority": "x"}, "line 3")


# -- depends_on, no_retry_exit_codes, unique_key


def test_depends_on() -> None:
    assert new_job({"command": "true", "depends_on": ["a", "b", "a"]}).depends_on == ["a", "b"]
    assert new_job({"command": "true", "depends_on": "a"}).depends_on == ["a"]
    assert new_job({"command": "true", "depends_on": []}).depends_on == []


@pytest.mark.parametrize(
    ("deps", "match"),
    [
        (["a b"], "depends_on"),
        ([1], "depends_on"),
        ({"a": 1}, "depends_on"),
        (5, "depends_on"),
        ([""], "depends_on"),
    ],
)
def test_invalid_depends_on(deps: object, match: str) -> None:
    bad({"command": "true", "depends_on": deps}, match)


def test_a_job_cannot_depend_on_itself() -> None:
    bad({"id": "a", "command": "true", "depends_on": ["a"]}, "itself")


def test_no_retry_exit_codes() -> None:
    job = new_job({"command": "true", "no_retry_exit_codes": [2, 0, 255, 2]})
    assert job.no_retry_exit_codes == [0, 2, 255]


@pytest.mark.parametrize("codes", [[-1], [256], ["x"], [1.5], [True], 2, "2", {"a": 1}])
def test_invalid_no_retry_exit_codes(codes: object) -> None:
    bad({"command": "true", "no_retry_exit_codes": codes}, "no_retry_exit_codes")


def test_unique_key() -> None:
    assert new_job({"command": "true", "unique_key": "k"}).unique_key == "k"


@pytest.mark.parametrize("key", ["", 5, "x" * 1025, "a\x00"])
def test_invalid_unique_key(key: object) -> None:
    bad({"command": "true", "unique_key": key}, "unique_key")


def test_null_means_absent() -> None:
    job = new_job(
        {
            "command": "true",
            "id": None,
            "queue": None,
            "priority": None,
            "max_retries": None,
            "timeout": None,
            "run_at": None,
            "delay": None,
            "depends_on": None,
            "no_retry_exit_codes": None,
            "unique_key": None,
            "env": None,
        }
    )
    assert (job.id, job.queue, job.priority, job.max_retries, job.timeout) == (
        None,
        "default",
        0,
        None,
        None,
    )


# -- the JSON shape


def test_to_dict_has_exactly_the_spec_fields_in_order() -> None:
    job = Job(
        id="a",
        command="true",
        state="pending",
        queue="default",
        priority=0,
        attempts=0,
        max_retries=3,
        timeout=None,
        run_at_ms=1_800_000_000_123,
        depends_on=["b"],
        no_retry_exit_codes=[2],
        unique_key=None,
        cwd="/",
        env={"A": "1"},
        created_at_ms=1_800_000_000_000,
        updated_at_ms=1_800_000_000_001,
    )
    data = job.to_dict()
    assert list(data) == SPEC_FIELDS
    assert data["run_at"] == "2027-01-15T08:00:00.123Z"
    assert data["created_at"] == "2027-01-15T08:00:00.000Z"
    assert data["started_at"] is None
    assert data["finished_at"] is None
    assert not job.finished
