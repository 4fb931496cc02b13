"""Bulk changes that say what they do: `purge` asks with the count it will delete, and
`dlq retry --all` says how many dead jobs it left, and why."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

from queuectl.durations import now_ms
from queuectl.models import new_job
from queuectl.store import JobFilter, Store, open_store
from tests.cli.conftest import dump, finish, make
from tests.cli.terminal import in_terminal
from tests.support.clock import FakeClock

Cli = Callable[..., subprocess.CompletedProcess[str]]


def ids(store: Store, state: str | None = None) -> set[str]:
    return {job.id for job in store.list_jobs(JobFilter(states=state and [state])).jobs}


# -- purge


def test_purge_asks_with_how_many_it_will_delete(target: str, store: Store) -> None:
    past = open_store(target, FakeClock(now_ms() - 3 * 86400_000))
    try:
        for n in range(3):
            make(past, f"old{n}", "completed", queue="q")
    finally:
        past.close()
    make(store, "new", "completed")
    before = dump(store)
    declined = in_terminal(
        target, "purge", "--state", "completed", "--older-than", "2d", typed="n\n"
    )
    assert "delete 3 completed jobs finished more than 2d ago? [y/N]" in declined.stderr
    assert declined.returncode == 1
    assert dump(store) == before
    everything = in_terminal(target, "purge", "--state", "completed", typed="n\n")
    assert "delete 4 completed jobs? [y/N]" in everything.stderr
    accepted = in_terminal(
        target, "purge", "--state", "completed", "--older-than", "2d", typed="y\n"
    )
    assert accepted.returncode == 0, accepted.stderr
    assert "purged 3 jobs" in accepted.stderr
    assert ids(store) == {"new"}


def test_purge_counts_with_separators_and_yes_asks_nothing(
    cli: Cli, target: str, store: Store
) -> None:
    store.enqueue_many([new_job({"id": f"c{n}", "command": "true"}) for n in range(1234)])
    store.cancel_all()
    asked = in_terminal(target, "purge", "--state", "cancelled", typed="n\n")
    assert "delete 1,234 cancelled jobs? [y/N]" in asked.stderr, asked.stderr
    assert len(ids(store, "cancelled")) == 1234
    result = cli("purge", "--state", "cancelled", "--yes")
    assert (result.returncode, result.stderr) == (0, "purged 1234 jobs\n")
    assert ids(store) == set()


def test_purge_with_nothing_to_delete_asks_nothing(target: str, store: Store) -> None:
    make(store, "new", "completed")
    screen = in_terminal(target, "purge", "--state", "completed", "--older-than", "1d", typed="y\n")
    assert screen.returncode == 0, screen.stderr
    assert screen.stderr == "no completed jobs finished more than 1d ago: nothing to purge\n"
    assert ids(store) == {"new"}


# -- dlq retry --all


def left_behind(store: Store) -> None:
    """Five dead jobs of one unique key (one of them can run again), a dead job whose
    dependency was cancelled since, and a plain dead job."""
    for n in range(5):
        make(store, f"k{n}", "dead", unique_key="report:daily", queue="keys")
    make(store, "parent", "completed", queue="fam")
    child = {"id": "child", "command": "false", "depends_on": ["parent"], "queue": "fam"}
    store.enqueue_many([new_job({**child, "max_retries": 0})])
    assert finish(store, "child", 1) == "dead"
    store.requeue(["parent"], ["completed"])
    store.cancel(["parent"])
    make(store, "plain", "dead")


def test_dlq_retry_all_says_what_it_left_and_why(cli: Cli, store: Store) -> None:
    left_behind(store)
    result = cli("dlq", "retry", "--all")
    assert result.returncode == 0, result.stderr
    retried = result.stdout.split()
    assert sorted(retried) == ["k0", "plain"]
    lines = result.stderr.splitlines()
    assert lines[0] == "retried 2 jobs; 5 left dead", result.stderr
    keys = lines[1].removeprefix("  4 have a unique key another job holds: ")
    assert keys != lines[1], result.stderr
    named, more = keys.split(" and ")
    assert set(named.split(", ")) < {"k1", "k2", "k3", "k4"}, keys
    assert more == "1 more", keys
    assert lines[2] == "  1 depends on a job still dead or cancelled: child (after parent)"
    assert len(lines) == 3
    assert ids(store, "dead") == {"k1", "k2", "k3", "k4", "child"}
    # Again: nothing more to retry, the same told.
    again = cli("dlq", "retry", "--all")
    assert again.stdout == ""
    assert again.stderr.splitlines()[0] == "retried 0 jobs; 5 left dead"


def test_dlq_retry_of_a_queue_tells_of_that_queue_only(cli: Cli, store: Store) -> None:
    left_behind(store)
    result = cli("dlq", "retry", "--queue", "fam")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "retried 0 jobs; 1 left dead",
        "  1 depends on a job still dead or cancelled: child (after parent)",
    ]


def test_dlq_retry_all_that_leaves_none_says_only_how_many(cli: Cli, store: Store) -> None:
    make(store, "a", "dead")
    make(store, "b", "dead")
    result = cli("dlq", "retry", "--all")
    assert (result.returncode, result.stderr) == (0, "retried 2 jobs\n")
    assert sorted(result.stdout.split()) == ["a", "b"]
