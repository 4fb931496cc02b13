"""Issue 12, item 9: runners and clients given a multi-host URL ride out a PostgreSQL failover.

Two private clusters on this machine: a primary that commits only once its synchronous standby
has the change, and that standby (pg_basebackup -R). The primary is killed (every process of it,
as a crashed machine) in the middle of a run and the standby promoted: no committed job is lost,
no two runs of a job overlap, every runner is still up. The shared server is not touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from queuectl import Queue
from tests.reliability.conftest import (
    Runners,
    _children,
    _free_port,
    audit,
    check_final_state,
    job_command,
)
from tests.support.runners import tagged, wait_until

JOBS = 300


def started(log: Path) -> int:
    return sum(line.startswith("S ") for line in log.read_text().splitlines())


def ended(log: Path) -> int:
    return sum(line.startswith("E ") for line in log.read_text().splitlines())


def _pg_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine, if any."""
    needed = ("initdb", "pg_ctl", "pg_basebackup", "postgres")
    found = [
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if all((folder / name).exists() for name in needed)
    ]
    return max(found, key=lambda p: int(p.parent.name)) if found else None


class Node:
    """One PostgreSQL server of the pair, run as the postgres user on its own port."""

    def __init__(self, bin_dir: Path, folder: Path, port: int) -> None:
        self.bin = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def run(self, *args: str, timeout: float = 120) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=60"
        )
        log = str(self.folder / "server.log")
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-w", "-t", "60", "-o", options, "start"
        )

    def crash(self) -> None:
        """SIGKILL the postmaster and every process it started, at once (a lost machine)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGSTOP)  # it cannot start another backend between look and kill
        for child in _children(pid):
            os.kill(child, signal.SIGKILL)
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.run("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", "immediate", "stop")
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((self.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)


@pytest.fixture
def pair() -> Iterator[tuple[Node, Node]]:
    """A primary and its synchronous streaming standby; skips without the binaries."""
    bin_dir = _pg_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = "no initdb/pg_ctl under /usr/lib/postgresql/*/bin" if bin_dir is None else ""
        pytest.skip(reason or "no runuser")
    folder = Path(tempfile.mkdtemp(prefix="queuectl-failover-"))
    ports = [_free_port()]
    while len(ports) < 2:
        port = _free_port()
        if port not in ports:
            ports.append(port)
    nodes = []
    for name, port in zip(("primary", "standby"), ports, strict=True):
        (folder / name).mkdir()
        nodes.append(Node(bin_dir, folder / name, port))
    if os.geteuid() == 0:
        for path in (folder, *(node.folder for node in nodes)):
            shutil.chown(path, "postgres", "postgres")
    primary, standby = nodes
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "-A", "trust", "--no-sync")
        primary.start()
        standby.run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(standby.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        standby.start()
        # Only now: the standby's copy of the settings must not wait for a standby of its own.
        with psycopg.connect(primary.url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")
            wait_until(
                lambda: conn.execute(
                    "SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'"
                ).fetchone(),
                30,
                "the standby to be synchronous",
                step=0.1,
            )
        yield primary, standby
    finally:
        for node in nodes:
            node.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_runners_ride_out_a_failover_to_the_synchronous_standby(
    pair: tuple[Node, Node], runners: Runners, tmp_path: Path, tag: str
) -> None:
    primary, standby = pair
    url = (
        f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}/postgres"
        "?target_session_attrs=read-write"
    )
    log = tmp_path / "runs.log"
    ids = [f"job-{n}" for n in range(JOBS)]
    with Queue(url) as queue:
        command = job_command(log, "sleep 0.05")
        queue.enqueue_many([{"id": job_id, "command": command} for job_id in ids])
    pair_of_runners = [runners.start(url, 4) for _ in range(2)]
    wait_until(lambda: log.exists() and ended(log) >= 40, 60, "40 jobs done", step=0.02)

    primary.crash()
    # The jobs in flight end while the store is down: their results wait in their runners.
    wait_until(lambda: ended(log) == started(log), 30, "the jobs in flight to end", step=0.05)
    standby.run("pg_ctl", "-D", str(standby.data), "-w", "-t", "60", "promote")
    assert ended(log) < JOBS - 40  # the failover came in the middle
    with psycopg.connect(standby.url, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)

    with Queue(url) as queue:
        late = [f"late-{n}" for n in range(20)]  # a client of the new primary, same URL
        queue.enqueue_many([{"id": job_id, "command": command} for job_id in late])
        ids += late
        wait_until(
            lambda: queue.status()["counts"]["completed"] == len(ids),
            60,
            "every job completed",
            step=0.25,
        )
        result = audit(log)
        assert result.problems == []
        assert check_final_state(queue, result, ids) == []
        assert queue.status()["counts"]["processing"] == 0
        assert {r.pid for r in queue.runners()} == {r.pid for r in pair_of_runners}
    assert all(runner.process.poll() is None for runner in pair_of_runners)
    runners.stop_all()
    assert tagged(tag) == []
