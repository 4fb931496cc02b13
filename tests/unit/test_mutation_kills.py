"""Behaviour of the pure modules that `make mutate` found untested: exact error messages, the
settlement of a batch of outcomes, and edge values of durations, backoff and jobs.

The config validators are built when `queuectl.config` is imported; they are called here
through their factories too, so that a change inside them is seen (mutmut activates a mutant
only in calls made while a test runs).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from queuectl import config, durations, lifecycle, models, retry
from queuectl.config import DEFAULTS
from queuectl.errors import InvalidInputError
from queuectl.lifecycle import Fence, Outcome, Settlement

T0 = 1_800_000_000_000


def message(call: Callable[[], object]) -> str:
    with pytest.raises(InvalidInputError) as caught:
        call()
    return str(caught.value)


# -- config: the validators and their messages


@pytest.mark.parametrize(
    ("check", "value", "stored"),
    [
        (lambda: config._integer(0, 100), " 7 ", 7),
        (lambda: config._integer(0, 100), 0, 0),
        (lambda: config._integer(0, 100), 100, 100),
        (lambda: config._integer(0), "123456", 123456),
        (lambda: config._integer(5), 5, 5),
        (lambda: config._number(1), " 1.5 ", 1.5),
        (lambda: config._number(1), 1, 1),
        (lambda: config._number(1), 2.0, 2),
        (lambda: config._number(0, 1), 1, 1),
        (lambda: config._number(0, 1), "0", 0),
        (lambda: config._number(1), "1e3", 1000),
        (lambda: config._seconds(1), "1", 1),
        (lambda: config._seconds(1), 1.5, 1.5),
        (lambda: config._seconds(0), "250ms", 0.25),
        (lambda: config._seconds(1), 2, 2),
    ],
)
def test_validators_accept_their_bounds(
    check: Callable[[], Callable[[object], float]], value: object, stored: float
) -> None:
    checked = check()(value)
    assert checked == stored
    assert type(checked) is type(stored)


@pytest.mark.parametrize(
    ("check", "value", "text"),
    [
        (lambda: config._integer(0, 100), True, "expected an integer, got True"),
        (lambda: config._integer(0, 100), "x", "expected an integer, got 'x'"),
        (lambda: config._integer(0, 100), 1.5, "expected an integer, got 1.5"),
        (lambda: config._integer(0, 100), -1, "must be an integer 0 to 100, got -1"),
        (lambda: config._integer(0, 100), "101", "must be an integer 0 to 100, got 101"),
        (lambda: config._integer(0), -1, "must be an integer >= 0, got -1"),
        (lambda: config._number(1), False, "expected a number, got False"),
        (lambda: config._number(1), "x", "expected a number, got 'x'"),
        (lambda: config._number(1), "nan", "expected a finite number, got 'nan'"),
        (lambda: config._number(1), float("inf"), "expected a finite number, got inf"),
        (lambda: config._number(1), 0.5, "must be a number >= 1, got 0.5"),
        (lambda: config._number(0, 1), "1.5", "must be a number 0 to 1, got 1.5"),
        (lambda: config._number(0, 1), -0.25, "must be a number 0 to 1, got -0.25"),
        (lambda: config._seconds(1), "0.5", "must be at least 1 second, got 0.5"),
        (lambda: config._seconds(1), 0, "must be at least 1 second, got 0"),
        (
            lambda: config._seconds(1),
            "x",
            "value: 'x' is not a duration (use seconds or 500ms, 30s, 5m, 2h, 7d)",
        ),
    ],
)
def test_validators_refuse_with_the_reason(
    check: Callable[[], Callable[[object], float]], value: object, text: str
) -> None:
    assert message(lambda: check()(value)) == text


def test_numbers_keep_their_exact_value() -> None:
    assert config._number(1)(2**53 + 1) == 2**53 + 1  # not rounded through a float's text
    assert config._seconds(0)(1e-7) == 1e-7  # "1e-07" would not parse as a duration


def test_minus_infinity_is_refused_as_not_finite_below_no_bound() -> None:
    assert message(lambda: config._number(-5)("-inf")) == "expected a finite number, got '-inf'"


def test_unknown_key_lists_the_known_ones() -> None:
    assert message(lambda: config.canonical_key("nope")) == (
        "unknown config key 'nope' (known: max_retries, backoff_base, backoff_max, "
        "backoff_jitter, job_timeout, lease_seconds, output_limit, retain_completed, retain_dead, "
        "retry_not_runnable, retain_audit)"
    )


def test_validate_names_the_key() -> None:
    assert message(lambda: config.validate("max-retries", "x")) == (
        "config max_retries: expected an integer, got 'x'"
    )


# -- durations


def test_parse_duration_names_what_it_parses() -> None:
    assert message(lambda: durations.parse_duration("x")).startswith("duration: 'x'")
    assert message(lambda: durations.parse_iso("x")).startswith("time: 'x'")


def test_now_ms_is_integer_milliseconds_of_the_real_time() -> None:
    before = time.time_ns() // 1_000_000
    now = durations.now_ms()
    after = time.time_ns() // 1_000_000
    assert type(now) is int
    assert before <= now <= after


@pytest.fixture
def away_from_utc() -> Iterator[None]:
    """A local time zone other than UTC, so that a naive time taken as local would show."""
    previous = time.tzname
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TZ", "America/New_York")
        time.tzset()
        yield
    time.tzset()
    assert time.tzname == previous


@pytest.mark.usefixtures("away_from_utc")
def test_a_time_without_an_offset_is_utc_whatever_the_local_zone() -> None:
    assert durations.parse_iso("2026-01-01T00:00:00") == 1_767_225_600_000
    assert durations.parse_iso("2026-01-01T00:00:00z") == 1_767_225_600_000


def test_parse_iso_gives_whole_milliseconds() -> None:
    parsed = durations.parse_iso("2026-01-01T00:00:00.0005Z")
    assert (parsed, type(parsed)) == (1_767_225_600_000, int)


# -- retry


def test_the_default_draw_gives_the_shortest_jittered_wait() -> None:
    assert retry.backoff_delay(1, 2, 100, 0.5) == 1.0


# -- lifecycle: settling a batch of outcomes under the fences still held


def outcome(job_id: str, attempt: int, exit_code: int | None, token: int = 0) -> Outcome:
    return Outcome(job_id, attempt, exit_code, None, 700, token=token or attempt)


def test_settle_ours_settles_only_the_attempts_still_ours_with_their_own_rules() -> None:
    ours = {
        "done": Fence(1, 1, 3, []),
        "retry": Fence(2, 2, 3, []),
        "last": Fence(2, 2, 1, []),
        "fatal": Fence(1, 1, 3, [64]),
        "stale": Fence(3, 3, 3, []),
        "again": Fence(1, 5, 3, []),  # run again (requeued) since: attempt 1 anew, claim 5
    }
    outcomes = [
        outcome("done", 1, 0),
        outcome("retry", 2, 1),
        outcome("last", 2, 1),
        outcome("fatal", 1, 64),
        outcome("stale", 2, 0),
        outcome("gone", 1, 0),
        outcome("again", 1, 0, token=4),  # the earlier claim's attempt 1
    ]
    draws = iter([0.0, 0.5, 0.25, 0.75])
    config_ = {**DEFAULTS, "backoff_jitter": 0.5}
    decided = lifecycle.settle_ours(outcomes, ours, config_, lambda: next(draws), lambda o: T0)
    assert decided == [
        (outcomes[0], Settlement("completed", None, None)),
        (outcomes[1], Settlement("failed", T0 + 3000, "exit code 1", 3.0)),  # 4 s * (1 - 0.25)
        (outcomes[2], Settlement("dead", None, "exit code 1")),
        (outcomes[3], Settlement("dead", None, "exit code 64 (not retried)")),
    ]


def test_settle_ours_with_nothing_ours_decides_nothing() -> None:
    nothing = lifecycle.settle_ours([outcome("a", 1, 0)], {}, DEFAULTS, lambda: 0.0, lambda o: T0)
    assert nothing == []


def test_settle_params_are_the_statements_parameters() -> None:
    ended = Outcome("job", 2, 1, None, 700, token=7, cpu_ms=40, max_rss_bytes=1 << 20)
    params = lifecycle.settle_params(
        ended, Settlement("failed", T0 + 4000, "exit code 1"), "r1", T0 + 5, T0
    )
    assert params == {
        "state": "failed",
        "run_at": T0 + 4000,
        "finished_at": T0,
        "exit_code": 1,
        "last_error": "exit code 1",
        "duration_ms": 700,
        "now": T0 + 5,
        "id": "job",
        "owner": "r1",
        "token": 7,
        "cpu_ms": 40,
        "max_rss_bytes": 1 << 20,
    }


def test_settle_params_never_give_a_negative_duration() -> None:
    backwards = Outcome("job", 1, 0, None, -10, token=1)
    settled = Settlement("completed", None, None)
    assert lifecycle.settle_params(backwards, settled, "r1", T0, T0)["duration_ms"] == 0


def test_settle_params_leave_an_unknown_duration_to_the_store() -> None:
    lost = Outcome("job", 1, None, "worker lost", None, token=1)
    settled = Settlement("failed", T0 + 2000, "worker lost")
    assert lifecycle.settle_params(lost, settled, "r1", T0, T0)["duration_ms"] is None


# -- models


def test_job_instants_as_aware_datetimes() -> None:
    job = models.Job(
        id="a",
        command="true",
        state="pending",
        queue="default",
        priority=0,
        attempts=0,
        max_retries=3,
        timeout=None,
        run_at_ms=T0 + 1500,
        depends_on=[],
        no_retry_exit_codes=[],
        unique_key=None,
        cwd="/",
        env={},
        created_at_ms=T0,
        updated_at_ms=T0 + 1,
        started_at_ms=T0 + 2,
        finished_at_ms=T0 + 3,
    )
    assert job.run_at.timestamp() == (T0 + 1500) / 1000
    assert job.created_at.utcoffset() is not None
    assert job.started_at == datetime.fromtimestamp((T0 + 2) / 1000, tz=UTC)
    assert job.finished_at == datetime.fromtimestamp((T0 + 3) / 1000, tz=UTC)
    job.started_at_ms = job.finished_at_ms = None
    assert (job.started_at, job.finished_at) == (None, None)


def test_to_dict_gives_each_instant_its_own_value() -> None:
    job = models.Job(
        id="a",
        command="true",
        state="completed",
        queue="default",
        priority=0,
        attempts=1,
        max_retries=3,
        timeout=None,
        run_at_ms=0,
        depends_on=[],
        no_retry_exit_codes=[],
        unique_key=None,
        cwd="/",
        env={},
        created_at_ms=1000,
        updated_at_ms=2000,
        started_at_ms=3000,
        finished_at_ms=4000,
    )
    shown = job.to_dict()
    assert [shown[k] for k in ("created_at", "updated_at", "started_at", "finished_at")] == [
        "1970-01-01T00:00:01.000Z",
        "1970-01-01T00:00:02.000Z",
        "1970-01-01T00:00:03.000Z",
        "1970-01-01T00:00:04.000Z",
    ]


@pytest.mark.parametrize(
    ("data", "now", "first"),
    [
        ({}, T0, T0),
        ({"delay": "1.5s"}, T0, T0 + 1500),
        ({"delay": 0}, T0, T0),
        ({"run_at": "1970-01-01T00:00:05Z"}, T0, 5000),
        ({"run_at": "1970-01-01T00:00:00Z"}, T0, 0),
    ],
)
def test_first_run_at(data: dict[str, Any], now: int, first: int) -> None:
    assert models.new_job({"command": "true", **data}).first_run_at(now) == first


@pytest.mark.parametrize(
    ("data", "where", "text"),
    [
        ([], "", "a job must be a JSON object, got list"),
        ({}, "", "command: missing"),
        ({"command": " "}, "", "command: must be a non-empty string"),
        ({"command": "a\x00b"}, "", "command: must not contain a NUL byte"),
        ({"command": "\udcff"}, "", "command: must be UTF-8 text"),
        (
            {"command": "true", "id": "a b"},
            "",
            "id: 'a b' is not valid (1 to 128 of A-Z a-z 0-9 . _ : -)",
        ),
        (
            {"command": "true", "queue": "a b"},
            "",
            "queue: 'a b' is not valid (1 to 128 of A-Z a-z 0-9 . _ : -)",
        ),
        ({"command": "true", "max_retries": "x"}, "", "max_retries: expected an integer, got 'x'"),
        (
            {"command": "true", "max_retries": 101},
            "",
            "max_retries: must be between 0 and 100, got 101",
        ),
        (
            {"command": "true", "timeout": "x"},
            "",
            "timeout: 'x' is not a duration (use seconds or 500ms, 30s, 5m, 2h, 7d)",
        ),
        ({"command": "true", "run_at": "x", "delay": 1}, "", "give run_at or delay, not both"),
        (
            {"command": "true", "run_at": "x"},
            "",
            "run_at: 'x' is not an ISO-8601 time (e.g. 2026-11-27T22:33:28Z)",
        ),
        (
            {"command": "true", "delay": "x"},
            "",
            "delay: 'x' is not a duration (use seconds or 500ms, 30s, 5m, 2h, 7d)",
        ),
        ({"command": "true", "depends_on": 5}, "", "depends_on: expected a list of job ids"),
        (
            {"command": "true", "depends_on": ["a b"]},
            "",
            "depends_on: 'a b' is not valid (1 to 128 of A-Z a-z 0-9 . _ : -)",
        ),
        (
            {"command": "true", "id": "a", "depends_on": ["a"]},
            "",
            "depends_on: a job cannot depend on itself",
        ),
        (
            {"command": "true", "no_retry_exit_codes": 1},
            "",
            "no_retry_exit_codes: expected a list of integers",
        ),
        (
            {"command": "true", "no_retry_exit_codes": [256]},
            "",
            "no_retry_exit_codes: must be between 0 and 255, got 256",
        ),
        (
            {"command": "true", "unique_key": ""},
            "",
            "unique_key: must be a non-empty string of UTF-8 text",
        ),
        ({"command": "true", "lock": " \t"}, "", "lock: must not be only spaces"),
        ({"command": "true", "unique_key": "  "}, "", "unique_key: must not be only spaces"),
        ({"command": "true", "cwd": ""}, "", "cwd: must be a non-empty path"),
        ({"command": "true", "env": []}, "", "env: expected an object of NAME: value"),
        ({}, "job 3", "job 3: command: missing"),
    ],
)
def test_new_job_errors_say_exactly_what_is_wrong(data: Any, where: str, text: str) -> None:
    assert message(lambda: models.new_job(data, where)) == text


def test_a_job_may_depend_on_jobs_other_than_itself() -> None:
    assert models.new_job({"command": "true", "depends_on": ["a"]}).depends_on == ["a"]
    assert models.new_job({"command": "true", "id": "b", "depends_on": ["a"]}).depends_on == ["a"]


def test_a_unique_key_of_exactly_1024_characters_is_accepted() -> None:
    assert models.new_job({"command": "true", "unique_key": "k" * 1024}).unique_key == "k" * 1024


def test_new_job_uses_the_cwd_given_for_the_batch() -> None:
    assert models.new_job({"command": "true"}, "", "/srv/batch").cwd == "/srv/batch"
    assert models.new_job({"command": "true"}, "job 1", "/srv/batch").cwd == "/srv/batch"


@pytest.mark.usefixtures("away_from_utc")
def test_a_time_typed_without_an_offset_is_local_on_the_command_line() -> None:
    five_hours = 5 * 3600_000  # New York in January
    assert durations.parse_iso("2026-01-01 00:00", naive_is_local=True) == (
        1_767_225_600_000 + five_hours
    )
    assert durations.parse_iso("2026-01-01T00:00:00Z", naive_is_local=True) == 1_767_225_600_000
