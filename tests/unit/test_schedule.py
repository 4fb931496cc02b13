"""Schedules: validation of a new schedule and the arithmetic of its slots (no store, no clock)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest

from queuectl.errors import InvalidInputError
from queuectl.schedule import MAX_NAME, next_slot_ms, validate_schedule


def ms(text: str) -> int:
    return round(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


JOB: dict[str, Any] = {"command": "true"}


# -- validation


def test_an_every_schedule_is_checked_and_keeps_the_adders_cwd() -> None:
    name, cron, every_s, tz, template = validate_schedule(
        "tick", None, "90s", None, {"command": "echo hi", "queue": "q", "priority": None}
    )
    assert (name, cron, every_s, tz) == ("tick", None, 90.0, None)
    assert template == {"command": "echo hi", "queue": "q", "cwd": os.getcwd()}


def test_a_cron_schedule_with_a_zone_is_checked() -> None:
    checked = validate_schedule("nightly", "0 3 * * *", None, "Europe/Paris", JOB)
    assert checked[:4] == ("nightly", "0 3 * * *", None, "Europe/Paris")


def test_every_accepts_plain_seconds_and_exactly_one_second() -> None:
    assert validate_schedule("a", None, 1, None, JOB)[2] == 1.0
    assert validate_schedule("a", None, "1s", None, JOB)[2] == 1.0


def test_a_name_of_the_maximum_length_is_accepted() -> None:
    assert validate_schedule("n" * MAX_NAME, None, "1m", None, JOB)[0] == "n" * MAX_NAME


@pytest.mark.parametrize(
    ("name", "cron", "every", "tz", "job", "message"),
    [
        (
            "bad name",
            None,
            "1s",
            None,
            JOB,
            "schedule name: 'bad name' is not valid (1 to 128 of A-Z a-z 0-9 . _ : -)",
        ),
        ("n" * (MAX_NAME + 1), None, "1s", None, JOB, "schedule name: at most 100 characters"),
        ("a", None, None, None, JOB, "give exactly one of --cron EXPR or --every DURATION"),
        ("a", "* * * * *", "1s", None, JOB, "give exactly one of --cron EXPR or --every DURATION"),
        ("a", None, "0.999", None, JOB, "--every: must be at least 1s"),
        (
            "a",
            None,
            "soon",
            None,
            JOB,
            "--every: 'soon' is not a duration (use seconds or 500ms, 30s, 5m, 2h, 7d)",
        ),
        ("a", None, "1s", "UTC", JOB, "--tz applies to --cron only"),
        (
            "a",
            "* * * *",
            None,
            None,
            JOB,
            "--cron: '* * * *' must have 5 fields (minute hour day month weekday) or be one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        ),
        (
            "a",
            "* * * * * *",
            None,
            None,
            JOB,
            "--cron: '* * * * * *' must have 5 fields (minute hour day month weekday) or be one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
        ),
        ("a", "61 * * * *", None, None, JOB, "--cron: '61 * * * *' is not a valid cron expression"),
        ("a", "0 3 * * *", None, "Mars/Olympus", JOB, "--tz: unknown time zone 'Mars/Olympus'"),
        ("a", "0 3 * * *", None, "../etc", JOB, "--tz: unknown time zone '../etc'"),
        (
            "a",
            None,
            "1s",
            None,
            {"command": "true", "id": "x"},
            "a scheduled job cannot have an id: each run gets '<name>.<slot>'",
        ),
        ("a", None, "1s", None, {"command": ""}, "command: must be a non-empty string"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(
    name: str,
    cron: str | None,
    every: str | None,
    tz: str | None,
    job: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_schedule(name, cron, every, tz, job)
    assert str(caught.value) == message


def test_an_invalid_zone_is_refused_before_the_cron_expression_is_read() -> None:
    with pytest.raises(InvalidInputError, match="--tz"):
        validate_schedule("a", "61 * * * *", None, "Nowhere/Else", JOB)


# -- every: slots are anchor + k * every, the first strictly after `after`


@pytest.mark.parametrize(
    ("after", "slot"),
    [(0, 10_000), (9_999, 10_000), (10_000, 20_000), (10_001, 20_000), (25_000, 30_000)],
)
def test_every_slots_count_from_the_anchor(after: int, slot: int) -> None:
    assert next_slot_ms(None, 10.0, None, 0, after) == slot


def test_every_slots_are_offset_by_the_anchor() -> None:
    anchor = 1_800_000_000_123
    assert next_slot_ms(None, 60.0, None, anchor, anchor) == anchor + 60_000
    assert next_slot_ms(None, 60.0, None, anchor, anchor + 59_999) == anchor + 60_000
    assert next_slot_ms(None, 60.0, None, anchor, anchor + 60_000) == anchor + 120_000
    assert next_slot_ms(None, 1.5, None, anchor, anchor + 2_000) == anchor + 3_000


def test_before_the_anchor_the_next_slot_is_the_anchor() -> None:
    assert next_slot_ms(None, 10.0, None, 50_000, 49_999) == 50_000
    assert next_slot_ms(None, 10.0, None, 50_000, 0) == 50_000


# -- cron: the next matching minute strictly after `after`, in the schedule's zone


def test_cron_slots_in_utc() -> None:
    after = ms("2026-03-01T02:59:59.500+00:00")
    assert next_slot_ms("0 3 * * *", None, None, 0, after) == ms("2026-03-01T03:00:00+00:00")
    at = ms("2026-03-01T03:00:00+00:00")
    assert next_slot_ms("0 3 * * *", None, None, 0, at) == ms("2026-03-02T03:00:00+00:00")
    every_5 = next_slot_ms("*/5 * * * *", None, None, 0, ms("2026-03-01T10:01:00+00:00"))
    assert every_5 == ms("2026-03-01T10:05:00+00:00")


def test_cron_slots_follow_the_zone_and_its_daylight_saving_time() -> None:
    winter = ms("2026-01-10T12:00:00+00:00")
    summer = ms("2026-07-10T12:00:00+00:00")
    assert next_slot_ms("0 3 * * *", None, "Europe/Paris", 0, winter) == ms(
        "2026-01-11T02:00:00+00:00"
    )
    assert next_slot_ms("0 3 * * *", None, "Europe/Paris", 0, summer) == ms(
        "2026-07-11T01:00:00+00:00"
    )


def test_cron_ignores_the_anchor() -> None:
    after = ms("2026-03-01T10:01:00+00:00")
    assert next_slot_ms("0 * * * *", None, None, after + 10**9, after) == ms(
        "2026-03-01T11:00:00+00:00"
    )
