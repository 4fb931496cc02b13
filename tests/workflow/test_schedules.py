"""Schedules: one job per slot whatever the number of runners, missed slots fire once, CLI."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from queuectl import Queue
from queuectl.durations import parse_iso
from queuectl.schedule import slot_job_id
from tests.workflow.conftest import Cli, all_in, ok, refused, wait_until


def _slot(job_id: str) -> int:
    """The slot (epoch ms) a scheduled job was enqueued for: its id is
    '<schedule>.<UTC stamp>', e.g. 'tick.20261129T013005.250Z' (see schedule.slot_job_id)."""
    from datetime import UTC, datetime

    stamp = job_id.split(".", 1)[1].removesuffix("Z")
    day, _, clock = stamp.partition("T")
    clock, _, ms = clock.partition(".")
    moment = datetime.strptime(day + clock.ljust(6, "0"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    return round(moment.timestamp() * 1000) + int(ms or 0)


def test_an_every_second_schedule_enqueues_once_per_slot_with_two_runners(
    cli: Cli, queue: Queue, start_runner: Callable[..., Any]
) -> None:
    start_runner("--count", "2")
    start_runner("--count", "2")
    ok(cli("schedule", "add", "tick", "--every", "1s", "--command", "true"))
    time.sleep(5)  # the window observed: five slots of the schedule
    ok(cli("schedule", "remove", "tick"))

    jobs = queue.list()
    assert 4 <= len(jobs) <= 6, [job.id for job in jobs]
    # Consecutive slots, none skipped. Once per slot is proven on the fake clock, with a
    # duplicate firing refused, in test_schedule_slots.py; here real runners only take part.
    slots = sorted(_slot(job.id) for job in jobs)
    assert all(b - a == 1000 for a, b in itertools.pairwise(slots)), slots
    wait_until(all_in(queue, "completed", *(job.id for job in jobs)), 15, "the jobs to run")


def test_slots_missed_while_no_runner_was_up_fire_once(
    cli: Cli, cli_json: Callable[..., Any], queue: Queue, start_runner: Callable[..., Any]
) -> None:
    ok(cli("schedule", "add", "backup", "--every", "1s", "--command", "true"))
    [listed] = cli_json("schedule", "list")
    assert listed["name"] == "backup"
    assert listed["every"] == 1
    assert listed["last_at"] is None
    first_slot = parse_iso(listed["next_at"], "next_at")
    wait_until(lambda: time.time_ns() // 1_000_000 > first_slot + 2200, 10, "three slots to pass")
    assert queue.list() == []

    runner = start_runner()
    [registered] = [r for r in queue.runners() if r.pid == runner.pid]
    wait_until(lambda: queue.list(), 15, "the schedule to fire")
    wait_until(lambda: queue.schedules()[0].last_at_ms, 15, "the schedule's last_at")
    late = [job.id for job in queue.list() if _slot(job.id) < registered.started_at_ms]
    assert late == [slot_job_id("backup", first_slot)], late

    [listed] = cli_json("schedule", "list")
    last_at = parse_iso(listed["last_at"], "last_at")
    next_at = parse_iso(listed["next_at"], "next_at")
    assert last_at >= registered.started_at_ms
    assert next_at > last_at
    assert (next_at - first_slot) % 1000 == 0
    late_job = slot_job_id("backup", first_slot)
    wait_until(all_in(queue, "completed", late_job), 15, "the late job to run")


def test_schedule_commands_refuse_bad_input_and_add_nothing(
    cli: Cli, cli_json: Callable[..., Any]
) -> None:
    assert "nope" in refused(cli("schedule", "remove", "nope"), 1)
    bad = [
        (["--cron", "61 * * * *"], "--cron"),
        (["--cron", "* * * *"], "--cron"),
        (["--cron", "0 0 * * mon-fry"], "--cron"),
        (["--every", "0s"], "--every"),
        (["--every", "soon"], "--every"),
        (["--cron", "0 3 * * *", "--tz", "Mars/Olympus"], "--tz"),
    ]
    for args, word in bad:
        line = refused(cli("schedule", "add", "nightly", *args, "--command", "true"))
        assert word in line, (args, line)
    assert cli_json("schedule", "list") == []

    ok(
        cli(
            "schedule",
            "add",
            "nightly",
            "--cron",
            "0 3 * * *",
            "--tz",
            "Europe/Paris",
            "--command",
            "true",
        )
    )
    [listed] = cli_json("schedule", "list")
    assert (listed["cron"], listed["tz"], listed["last_at"]) == ("0 3 * * *", "Europe/Paris", None)
    assert listed["next_at"].endswith("Z")
    ok(cli("schedule", "remove", "nightly"))
    assert cli_json("schedule", "list") == []
    assert ok(cli("list", "--json")).strip() == "[]"
