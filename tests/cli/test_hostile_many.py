"""`logs --attempt`, `requeue`, `cancel --queue` and `list` given what a hostile user gives them:
one clear line, the documented exit code, the store unchanged (SPEC 9.3, 9.5)."""

from __future__ import annotations

import json

import pytest

from queuectl.store import Store
from tests.cli.conftest import dump, make
from tests.support.cli import assert_clean_error
from tests.workflow.conftest import Cli


@pytest.mark.parametrize("attempt", ["9223372036854775807", "9223372036854775808", "1" + "0" * 30])
def test_logs_of_an_attempt_no_store_can_count_says_there_is_none(
    cli: Cli, store: Store, attempt: str
) -> None:
    make(store, "done", "completed")
    assert_clean_error(cli("logs", "done", "--attempt", attempt), 1, f"no attempt {attempt}")
    assert_clean_error(cli("logs", "done", "--json", "--attempt", attempt), 1, "no attempt")
    assert_clean_error(cli("logs", "nope", "--attempt", attempt), 1, "no job 'nope'")


@pytest.mark.parametrize("attempt", ["0", "-1", "two", ""])
def test_logs_of_an_attempt_that_is_no_number_is_bad_usage(
    cli: Cli, store: Store, attempt: str
) -> None:
    make(store, "done", "completed")
    assert_clean_error(cli("logs", "done", "--attempt", attempt), 2, "--attempt")


@pytest.mark.parametrize(
    "ids",
    [("done", "nope"), ("nope", "done"), ("done", "waiting"), ("done", "bad id"), ("done", "")],
)
def test_requeue_of_a_list_with_one_bad_id_changes_nothing(
    cli: Cli, store: Store, ids: tuple[str, ...]
) -> None:
    make(store, "done", "completed")
    make(store, "waiting", "pending")
    before = dump(store)
    result = cli("requeue", *ids)
    assert result.returncode in (1, 2)
    assert_clean_error(result, result.returncode)
    assert result.stdout == "", "nothing requeued, nothing printed"
    assert dump(store) == before


def test_requeue_twice_is_refused_the_second_time(cli: Cli, store: Store) -> None:
    make(store, "done", "completed")
    assert cli("requeue", "done", "done").stdout == "done\n"
    assert_clean_error(cli("requeue", "done"), 1, "'done' is pending")


@pytest.mark.parametrize("name", ["a b", "x" * 129, "é"])
def test_cancel_of_a_queue_no_job_can_be_in_is_refused(cli: Cli, store: Store, name: str) -> None:
    make(store, "waiting", "pending")
    before = dump(store)
    assert_clean_error(cli("cancel", "--queue", name, "--yes"), 2, "queue")
    assert_clean_error(cli("cancel", "--queue", name), 2, "queue")
    assert dump(store) == before


def test_cancel_of_a_queue_with_no_jobs_says_so(cli: Cli, store: Store) -> None:
    make(store, "waiting", "pending")
    result = cli("cancel", "--queue", "empty")
    assert (result.returncode, result.stderr) == (0, "nothing to cancel in queue 'empty'\n")
    assert store.get("waiting").state == "pending"  # type: ignore[union-attr]


def test_list_says_where_it_stopped_on_stderr_and_never_inside_json(cli: Cli, store: Store) -> None:
    for n in range(4):
        make(store, f"p{n}", "pending", queue="a")
    make(store, "d0", "dead", queue="b")
    listed = cli("list", "--limit", "2", "--state", "dead", "--state", "pending", "--json")
    assert listed.returncode == 0
    assert [job["id"] for job in json.loads(listed.stdout)] == ["d0", "p3"]
    text = cli("list", "-n", "2", "-s", "dead", "-s", "pending")
    assert text.stderr == "2 of 5 shown; --limit 0 for all\n"
    assert "shown" not in text.stdout
    assert "shown" not in cli("list", "--limit", "0").stderr
    assert len(json.loads(cli("list", "--limit", "0", "--json").stdout)) == 5
    assert_clean_error(cli("list", "--state", "dead", "--state", "deadd"), 2, "'deadd'")
