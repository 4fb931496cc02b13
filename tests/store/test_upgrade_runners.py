"""An upgrade that changes how jobs are claimed waits for the older runners to stop: a runner of
an older queuectl would go on claiming by the old rules (no limits, no locks)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import queuectl
from queuectl import Queue
from queuectl.runner.liveness import host_name, process_started
from queuectl.store.queries import claim_changes, migrations
from tests.support.cli import run_cli
from tests.support.runners import (  # noqa: F401 - fixtures used here
    RunnerProcess,
    process_env,
    start_runner,
    tag,
)

#: The last schema before flow control (0005): what release 0.1.0's runners knew.
OLD_SCHEMA = 4


def old_store(target: str, version: int) -> None:
    """An empty store at schema `version` only, as an older release left it."""
    if target.startswith("postgresql://"):
        import psycopg

        from tests.pg import at_schema

        with psycopg.connect(target, autocommit=True) as conn:
            at_schema(conn, version)
        return
    from queuectl.store.sqlite import _statements

    conn = sqlite3.connect(target, isolation_level=None)
    try:
        for _, _, sql in (m for m in migrations("sqlite") if m[0] <= version):
            for statement in _statements(sql):
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {version}")
    finally:
        conn.close()


def sql(target: str, statement: str, *params: object) -> list[tuple[object, ...]]:
    """One statement (`?` placeholders) on the store, behind its back; the rows it returns."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            cursor = conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        return conn.execute(statement, params).fetchall()
    finally:
        conn.close()


def schema_version(target: str) -> int:
    if target.startswith("postgresql://"):
        return int(sql(target, "SELECT MAX(version) FROM queuectl_schema")[0][0])  # type: ignore[call-overload]
    return int(sql(target, "PRAGMA user_version")[0][0])  # type: ignore[call-overload]


def register_old_runner(target: str, pid: int, host: str | None = None) -> str:
    """A runners row as an older runner writes it when it starts (the same columns since 0001)."""
    now = int(time.time() * 1000)
    runner_id = f"{host or host_name()}-{pid}-0ld0"
    sql(
        target,
        "INSERT INTO runners (id, host, pid, pid_started, workers, queues, started_at,"
        " heartbeat_at) VALUES (?, ?, ?, ?, 1, NULL, ?, ?)",
        runner_id,
        host or host_name(),
        pid,
        process_started(pid),
        now,
        now,
    )
    return runner_id


def test_the_migrations_of_flow_control_are_marked_as_changing_claims() -> None:
    for dialect in ("sqlite", "postgres"):
        assert 5 in claim_changes(dialect, OLD_SCHEMA)
        assert claim_changes(dialect, migrations(dialect)[-1][0]) == []


def test_an_upgrade_that_changes_claims_waits_for_an_older_runner_to_stop(
    target: str, tmp_path: Path
) -> None:
    old_store(target, OLD_SCHEMA)
    # The older runner: a live process of this host, registered as a 0.1 runner registers.
    older = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL)
    try:
        runner_id = register_old_runner(target, older.pid)
        refused = run_cli(target, "status")
        assert refused.returncode == 1
        [line] = refused.stderr.splitlines()
        assert line.startswith("error: ")
        assert f"runner {runner_id} (host {host_name()}, pid {older.pid})" in line
        assert "queuectl worker stop" in line
        assert "Traceback" not in refused.stderr
        assert schema_version(target) == OLD_SCHEMA, "the store was changed"
    finally:
        older.kill()
        older.wait()

    # Gone (its pid no longer runs): nothing holds the upgrade back.
    upgraded = run_cli(target, "status")
    assert upgraded.returncode == 0, upgraded.stderr
    assert schema_version(target) == migrations("sqlite")[-1][0]


def test_an_older_runner_of_another_host_holds_the_upgrade_while_its_heartbeat_is_fresh(
    target: str,
) -> None:
    old_store(target, OLD_SCHEMA)
    runner_id = register_old_runner(target, 4242, host="other-host")
    refused = run_cli(target, "enqueue", "--command", "true")
    assert refused.returncode == 1
    assert f"runner {runner_id} (host other-host, pid 4242)" in refused.stderr
    assert schema_version(target) == OLD_SCHEMA
    assert sql(target, "SELECT COUNT(*) FROM jobs") == [(0,)]

    # Silent for long (its heartbeat many leases old): dead, it holds nothing back.
    sql(target, "UPDATE runners SET heartbeat_at = ?", int(time.time() * 1000) - 600_000)
    upgraded = run_cli(target, "enqueue", "--command", "true")
    assert upgraded.returncode == 0, upgraded.stderr
    assert schema_version(target) == migrations("sqlite")[-1][0]


@pytest.mark.parametrize("changes_claims", [False, True], ids=["neutral", "changes-claims"])
def test_a_live_older_runner_holds_back_only_a_migration_that_changes_claims(
    target: str, tmp_path: Path, changes_claims: bool
) -> None:
    """A queuectl one migration newer than this one (a copy of the package with one more
    migration) upgrades beside a live runner of this version unless that migration changes
    claims."""
    newest = migrations("sqlite")[-1][0]
    package = tmp_path / "newer" / "queuectl"
    shutil.copytree(
        Path(queuectl.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__")
    )
    first_line = "-- Changes claims: a test's migration\n" if changes_claims else ""
    for dialect in ("sqlite", "postgres"):
        migration = package / "store" / "migrations" / dialect / f"{newest + 1:04d}_probe.sql"
        migration.write_text(f"{first_line}CREATE TABLE upgrade_probe (x INTEGER);\n")
    old_store(target, newest)
    register_old_runner(target, 4242, host="other-host")

    upgrade = subprocess.run(
        [sys.executable, "-m", "queuectl", "status"],
        env={**os.environ, "QUEUECTL_DB": target, "PYTHONPATH": str(package.parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    if changes_claims:
        assert upgrade.returncode == 1
        assert "runner other-host-4242-0ld0 (host other-host, pid 4242)" in upgrade.stderr
        assert schema_version(target) == newest
    else:
        assert upgrade.returncode == 0, upgrade.stderr
        assert schema_version(target) == newest + 1


def test_a_runner_stops_when_a_newer_queuectl_upgrades_the_store(
    queue: Queue,
    target: str,
    start_runner: Callable[..., RunnerProcess],  # noqa: F811 - the imported fixture
) -> None:
    queue.set_config("lease_seconds", 3)  # a heartbeat a second
    runner = start_runner()
    future = migrations("sqlite")[-1][0] + 1
    if target.startswith("postgresql://"):
        sql(target, "INSERT INTO queuectl_schema VALUES (?, ?)", future, f"{future:04d}_future")
    else:
        sql(target, f"PRAGMA user_version = {future}")
    assert runner.wait(15) == 1
    assert f"written by a newer queuectl (schema {future}" in runner.log()


@pytest.mark.backends("sqlite")  # PostgreSQL's exchange leaves the check to the heartbeat
def test_a_runner_whose_exchange_meets_a_newer_schema_stops_too(
    queue: Queue,
    target: str,
    start_runner: Callable[..., RunnerProcess],  # noqa: F811 - the imported fixture
) -> None:
    """A heartbeat every 100 s: the exchange, polling every 0.2 s, meets the schema first (it
    took the refusal for an outage and retried forever)."""
    queue.set_config("lease_seconds", 300)
    runner = start_runner(env={"QUEUECTL_POLL_S": "0.2"})
    future = migrations("sqlite")[-1][0] + 1
    sql(target, f"PRAGMA user_version = {future}")
    assert runner.wait(15) == 1
    assert f"written by a newer queuectl (schema {future}" in runner.log()
