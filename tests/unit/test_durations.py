"""Durations ("500ms/30s/5m/2h/7d") and ISO-8601 UTC timestamps."""

from __future__ import annotations

import pytest

from queuectl.durations import MAX_DURATION_S, ms_to_iso, parse_duration, parse_iso
from queuectl.errors import InvalidInputError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("7d", 604800.0),
        ("30", 30.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (".5s", 0.5),
        (" 10s ", 10.0),
        ("10 s", 10.0),
        (45, 45.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration_accepts_seconds_and_units(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "abc",
        "-5",
        "-5s",
        "5x",
        "5 fortnights",
        "1e3",
        "inf",
        "nan",
        "5s5",
        "s",
        "1.2.3",
        -1,
        float("inf"),
        float("nan"),
        True,
        False,
        "99999999999999999999d",
    ],
)
def test_parse_duration_refuses_junk(junk: object) -> None:
    with pytest.raises(InvalidInputError, match="timeout"):
        parse_duration(junk, "timeout")  # type: ignore[arg-type]


def test_parse_duration_has_an_upper_bound() -> None:
    assert parse_duration(MAX_DURATION_S) == MAX_DURATION_S
    with pytest.raises(InvalidInputError, match="100 years"):
        parse_duration(MAX_DURATION_S + 1)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2026-11-27T22:33:28.123Z", "2026-11-27T22:33:28.123Z"),
        ("2026-11-27T22:33:28Z", "2026-11-27T22:33:28.000Z"),
        ("2026-11-27T22:33:28z", "2026-11-27T22:33:28.000Z"),
        ("2026-11-27T22:33:28", "2026-11-27T22:33:28.000Z"),
        ("2026-11-27T23:33:28.5+01:00", "2026-11-27T22:33:28.500Z"),
        ("2026-11-27T17:33:28-05:00", "2026-11-27T22:33:28.000Z"),
        ("2026-11-27", "2026-11-27T00:00:00.000Z"),
        ("2026-11-27 22:33", "2026-11-27T22:33:00.000Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"),
        ("9999-12-31T23:59:59.999Z", "9999-12-31T23:59:59.999Z"),
    ],
)
def test_parse_iso_round_trips_to_utc_milliseconds(text: str, iso: str) -> None:
    assert ms_to_iso(parse_iso(text)) == iso


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "tomorrow",
        "2026-13-01",
        "2026-11-31T00:00:00Z",
        "27/11/2026",
        "2026-11-27T25:00",
        12345,
        None,
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
    ],
)
def test_parse_iso_refuses_junk_and_out_of_range(junk: object) -> None:
    with pytest.raises(InvalidInputError, match="run_at"):
        parse_iso(junk, "run_at")  # type: ignore[arg-type]


def test_ms_to_iso() -> None:
    assert ms_to_iso(None) is None
    assert ms_to_iso(0) == "1970-01-01T00:00:00.000Z"
    assert ms_to_iso(-1) == "1969-12-31T23:59:59.999Z"
    assert ms_to_iso(1_800_000_000_123) == "2027-01-15T08:00:00.123Z"
    assert parse_iso("2027-01-15T08:00:00.123Z") == 1_800_000_000_123


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1h30m", 5400),
        ("2m 30s", 150),
        ("1d2h3m4s", 93784),
        ("10min", 600),
        ("10 mins", 600),
        ("2 hours", 7200),
        ("45sec", 45),
        ("1 day", 86400),
        ("250msec", 0.25),
    ],
)
def test_durations_as_people_write_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1h30", "5M", "1h 30x", "m5", "1hh"])
def test_a_sum_needs_a_known_unit_on_every_part(text: str) -> None:
    with pytest.raises(InvalidInputError, match="is not a duration"):
        parse_duration(text)
