"""Schedules as people write them: `--every 1h` shown as written, cron nicknames, readable
slot ids."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl.models import ID_PATTERN
from queuectl.schedule import slot_job_id

Cli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def target(tmp_path: Path) -> str:
    return str(tmp_path / "queue.db")


def test_every_is_shown_as_written(cli: Cli) -> None:
    for name, every in [("hourly", "1h"), ("quick", "90s"), ("daily", "1d"), ("fast", "1500ms")]:
        assert cli("schedule", "add", name, "--every", every, "-c", "true").returncode == 0
    table = cli("schedule", "list").stdout
    rows = {line.split()[0]: line for line in table.splitlines()[1:]}
    assert "every 1h " in rows["hourly"]
    assert "every 90s " in rows["quick"]
    assert "every 1d " in rows["daily"]
    assert "every 1500ms " in rows["fast"]
    assert "3600" not in table


@pytest.mark.parametrize("nickname", ["@daily", "@hourly", "@weekly", "@monthly", "@yearly"])
def test_cron_nicknames_are_accepted(cli: Cli, nickname: str) -> None:
    added = cli("schedule", "add", "nick", "--cron", nickname, "-c", "true")
    assert added.returncode == 0, added.stderr
    (listed,) = json.loads(cli("schedule", "list", "--json").stdout)
    assert listed["cron"] == nickname
    assert listed["next_at"].endswith(":00.000Z")


def test_daily_fires_at_midnight_utc(cli: Cli) -> None:
    assert cli("schedule", "add", "nightly", "--cron", "@daily", "-c", "true").returncode == 0
    (listed,) = json.loads(cli("schedule", "list", "--json").stdout)
    assert listed["next_at"].endswith("T00:00:00.000Z")


@pytest.mark.parametrize("cron", ["@reboot", "@every", "@dailyy"])
def test_unknown_nicknames_are_refused(cli: Cli, cron: str) -> None:
    refused = cli("schedule", "add", "nick", "--cron", cron, "-c", "true")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --cron:")
    assert "@daily" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1
    assert json.loads(cli("schedule", "list", "--json").stdout) == []


def test_slot_ids_are_readable_utc_and_distinct() -> None:
    minute = 1_795_915_800_000  # 2026-11-29T01:30:00Z
    assert slot_job_id("poll", minute) == "poll.20261129T0130Z"
    assert slot_job_id("poll", minute + 30_000) == "poll.20261129T013030Z"
    assert slot_job_id("poll", minute + 30_500) == "poll.20261129T013030.500Z"
    slots = [minute + step * 250 for step in range(2000)]
    ids = {slot_job_id("poll", at) for at in slots}
    assert len(ids) == len(slots)
    longest = slot_job_id("n" * 100, minute + 1_001)
    assert ID_PATTERN.fullmatch(longest), longest
