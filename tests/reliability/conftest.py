"""Helpers for the reliability suite: many runner processes, a log of every run, and its audit.

Each job appends a start line and an end line to one log file (O_APPEND, one write a line):
`S|E JOB ATTEMPT PGID RUNNER_PID HOST NS`. Appends are ordered by the kernel, so the line
order is a real-time order: a run ended before another started exactly when its E line comes
before the other's S line. A run killed with its runner has no E line; the test appends
`K RUNNER_PID NS` once that runner and its jobs' process groups are gone, which closes it.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pytest

from queuectl import Queue
from tests.support.cli import QUEUECTL
from tests.support.runners import (  # noqa: F401 - `tag` is an autouse fixture here too
    TAG_VAR,
    RunnerProcess,
    _stat,
    tag,
    wait_until,
)

PG_BIN = Path(os.environ.get("QUEUECTL_PG_BIN", "/usr/lib/postgresql/15/bin"))


def job_command(log: Path, work: str = "sleep 0.01", on_term: str | None = None) -> str:
    """A job that logs its start and its end around `work` (see the module docstring).

    `on_term`: the job traps SIGTERM, runs this (a dying that takes a while), logs its end and
    exits; its end line is then the last thing it does, as on a normal end.
    """
    path = shlex.quote(str(log))
    mark = '"$QUEUECTL_JOB_ID $QUEUECTL_ATTEMPT $$ $PPID ${QUEUECTL_HOSTNAME:--} $(date +%s%N)"'
    if on_term is None:
        return f"echo S {mark} >> {path}; {work}; echo E {mark} >> {path}"
    # SIGTERM goes to the whole group: `date` must outlive it, or a line loses its instant.
    mark = mark.replace("$(date", "$(trap '' TERM; date")
    return (
        f'ended() {{ echo E {mark} >> {path}; }}; trap "{on_term}; ended; exit 143" TERM; '
        f"echo S {mark} >> {path}; {work}; ended"
    )


# -- runner processes


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, zombies too: a job that has ended but that its
    stopped runner has not collected is still in flight (its result is not recorded). Under
    load a job can end while /proc is read, so only counting live ones could miss all."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and fields[0] != "X" and int(fields[1]) == pid:
                found.append(int(name))
    return found


def _live_groups(pgids: set[int]) -> set[int]:
    """Those of `pgids` that still have a live member (one scan of /proc for all)."""
    live = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            fields = _stat(int(name))
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) in pgids:
                live.add(int(fields[2]))
    return live


def append_line(log: Path, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode() + b"\n")
    finally:
        os.close(fd)


def kill_runner(runner: RunnerProcess, log: Path, busy: bool = False, timeout: float = 10.0) -> int:
    """SIGKILL a runner, wait for its jobs' process groups to die, then log `K PID NS`;
    how many jobs it was running.

    It is stopped first, so the jobs it has spawned are exactly its children at that moment
    (it cannot spawn one between our look and the kill). `busy`: catch it running a job.
    """
    pid = runner.pid
    for _ in range(200):
        runner.send(signal.SIGSTOP)
        wait_until(lambda: (_stat(pid) or ["T"])[0] in "TZX", 5, f"runner {pid} to stop")
        jobs = set(_children(pid))  # every job leads its own process group; the watchdog too
        if len(jobs) > 1 or not busy:
            break
        runner.send(signal.SIGCONT)
        time.sleep(random.uniform(0.005, 0.05))  # not under test: another moment to catch one
    runner.send(signal.SIGKILL)
    runner.wait(10)
    wait_until(lambda: not _live_groups(jobs), timeout, f"the jobs of killed runner {pid} to die")
    append_line(log, f"K {pid} {time.time_ns()}")
    return len(jobs) - 1  # its watchdog is a child too


class Runners:
    """`queuectl worker start` processes of one test, on any store; all killed at teardown."""

    def __init__(self, test_tag: str, folder: Path) -> None:
        self.tag = test_tag
        self.folder = folder
        self.started: list[RunnerProcess] = []
        self._logs: list[IO[bytes]] = []

    def start(self, target: str, workers: int = 4, host: str | None = None) -> RunnerProcess:
        """A runner with `workers` slots (as host `host`), once it has registered."""
        env = {**os.environ, "QUEUECTL_DB": target, TAG_VAR: self.tag}
        for name in ("QUEUECTL_DEBUG", "QUEUECTL_HOSTNAME"):
            env.pop(name, None)
        if host is not None:
            env["QUEUECTL_HOSTNAME"] = host
        log_path = self.folder / f"runner-{len(self.started) + 1}.log"
        log = open(log_path, "wb")  # noqa: SIM115 - closed at teardown
        self._logs.append(log)
        process = subprocess.Popen(
            [QUEUECTL, "worker", "start", "-n", str(workers)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        runner = RunnerProcess(process, log_path)
        self.started.append(runner)
        queue = Queue(target)
        try:

            def registered() -> bool:
                assert process.poll() is None, f"the runner exited early:\n{runner.log()}"
                return process.pid in {r.pid for r in queue.runners()}

            wait_until(registered, 30, f"runner {process.pid} to register", step=0.05)
        finally:
            queue.close()
        return runner

    def alive(self) -> list[RunnerProcess]:
        return [r for r in self.started if r.process.poll() is None]

    def stop_all(self, timeout: float = 60.0) -> None:
        """Graceful stop (SIGTERM) of every live runner; each must exit 0."""
        live = self.alive()
        for runner in live:
            runner.send(signal.SIGTERM)
        for runner in live:
            code = runner.wait(timeout)
            assert code == 0, f"runner {runner.pid} exited {code}:\n{runner.log()[-3000:]}"

    def close(self) -> None:
        for runner in self.started:
            if runner.process.poll() is None:
                runner.process.kill()
            runner.process.wait(10)
        for log in self._logs:
            log.close()
        for runner in self.started:
            tail = "\n".join(runner.log().splitlines()[-25:])
            print(
                f"--- runner {runner.pid} (exit {runner.process.returncode}), last lines:\n{tail}"
            )


@pytest.fixture
def runners(tag: str, tmp_path: Path) -> Iterator[Runners]:  # noqa: F811 - the imported fixture
    pool = Runners(tag, tmp_path)
    yield pool
    pool.close()


# -- the audit of the run log


@dataclass
class Run:
    job: str
    attempt: int
    pgid: int
    runner_pid: int
    host: str
    start_pos: int
    start_ns: int
    end_pos: int | None = None
    end_ns: int | None = None


@dataclass
class Audit:
    """What the run log shows; `problems` lists every violation found."""

    runs: list[Run] = field(default_factory=list)
    by_job: dict[str, list[Run]] = field(default_factory=dict)
    kills: dict[int, tuple[int, int]] = field(default_factory=dict)  # runner pid: (pos, ns)
    overlaps: list[str] = field(default_factory=list)
    unexplained: list[str] = field(default_factory=list)  # unfinished runs of a runner not killed
    problems: list[str] = field(default_factory=list)

    @property
    def repeated(self) -> int:
        """Runs beyond the first of each job."""
        return len(self.runs) - len(self.by_job)

    def hosts(self) -> set[str]:
        return {run.host for run in self.runs}


def audit(log: Path, rerun: bool = False) -> Audit:
    """Parse the run log and check that no two runs of a job overlapped in time.

    `rerun`: jobs were requeued or retried from the DLQ, so their attempt numbers start again
    and a run is told from another by its process group instead.
    """
    result = Audit()
    seen: dict[tuple[str, int], Run] = {}
    last_ns = 0
    for pos, line in enumerate(log.read_text().splitlines()):
        word = line.split()
        if word[0] == "#":
            continue
        if word[0] == "K":
            result.kills[int(word[1])] = (pos, int(word[2]))
            last_ns = int(word[2])
            continue
        if len(word) == 6:
            # SIGTERM caught the line's `date` before the job could ignore it (the job traps
            # TERM). An end line: the trap writes another. A start line: the instant of the
            # line before, a little early, so it can only make runs look longer.
            if word[0] == "E":
                continue
            word.append(str(last_ns))
        kind, job, attempt, pgid, ppid, host, ns = word
        last_ns = int(ns)
        key = (job, int(pgid) if rerun else int(attempt))
        if kind == "S":
            if key in seen:
                result.problems.append(f"attempt {attempt} of {job} started twice (line {pos + 1})")
                result.overlaps.append(job)
                continue
            run = Run(job, int(attempt), int(pgid), int(ppid), host, pos, int(ns))
            seen[key] = run
            result.runs.append(run)
            result.by_job.setdefault(job, []).append(run)
        else:
            run = seen[key]
            if run.pgid == int(pgid):
                run.end_pos, run.end_ns = pos, int(ns)
    for job, runs in result.by_job.items():
        for before, after in itertools.pairwise(runs):
            if before.end_pos is not None:
                closed_pos, closed_ns = before.end_pos, before.end_ns
            elif before.runner_pid in result.kills:
                closed_pos, closed_ns = result.kills[before.runner_pid]
            else:
                result.unexplained.append(job)
                result.problems.append(
                    f"attempt {before.attempt} of {job} never ended, and its runner "
                    f"{before.runner_pid} was not killed"
                )
                continue
            if closed_pos > after.start_pos or (closed_ns or 0) > after.start_ns:
                result.overlaps.append(job)
                result.problems.append(
                    f"attempts {before.attempt} and {after.attempt} of {job} overlapped "
                    f"(lines {before.start_pos + 1} to {closed_pos + 1} and {after.start_pos + 1})"
                )
    return result


def peak(runs: list[Run], result: Audit, recovered: dict[tuple[str, int], int]) -> int:
    """The most of `runs` running at once, from what the jobs recorded.

    A run that logged its end ran from its S line to its E line (both written by the job
    itself, so inside the attempt: the store marked it processing before the S line, and
    settles it only after the E line). A run with no E line was cut short when its runner was
    SIGKILLed: its process died with the runner (the watchdog kills the groups; kill_runner
    waits for that before it writes the K line), at an instant nothing records. It counts as
    running until the earlier of the K line and the moment the store recovered its attempt
    (`recovered`, by job and process group: the history's finished_at, epoch milliseconds):
    the limit is the store's, so from that moment the slot is free for another job, and until
    then no other job could have it.
    """
    events = []
    for run in runs:
        if run.end_ns is not None:
            end = run.end_ns
        else:
            # (a run neither ended nor killed is a problem the audit reports already)
            kill_ns = result.kills.get(run.runner_pid, (0, 2**63))[1]
            end = min(kill_ns, recovered[(run.job, run.pgid)] * 1_000_000)
        events += [(run.start_ns, 1), (end, -1)]
    running = highest = 0
    for _, step in sorted(events):  # an end at the same instant as a start comes first
        running += step
        highest = max(highest, running)
    return highest


def check_final_state(
    queue: Queue, result: Audit, ids: list[str], others: Collection[str] = ()
) -> list[str]:
    """Every job completed by a run the log shows finished; none processing, none dead. The
    queue holds `ids` and `others`, whose states the caller checks."""
    problems = []
    jobs = {job.id: job for job in queue.list(limit=None) if job.id not in others}
    assert set(jobs) == set(ids)
    for job_id in ids:
        job = jobs[job_id]
        if job.state != "completed":
            problems.append(f"{job_id} is {job.state} ({job.last_error})")
            continue
        finished = [r for r in result.by_job.get(job_id, []) if r.attempt == job.attempts]
        if not finished or finished[0].end_pos is None:
            problems.append(f"{job_id} completed by attempt {job.attempts}, not logged as ended")
    return problems


# -- a private PostgreSQL cluster


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A throw-away PostgreSQL cluster, run as the postgres user on a free port."""

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.data = folder / "data"
        self.port = port
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _pg(self, *args: str, timeout: float = 120) -> None:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def restart(self) -> None:
        self._pg(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.folder / "server.log"),
            "-w",
            "-t",
            "60",
            "-m",
            "fast",
            "restart",
        )

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._pg("pg_ctl", "-D", str(self.data), "-w", "-t", "30", "-m", "immediate", "stop")
        pid_file = self.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)  # it did not stop


@pytest.fixture
def private_pg() -> Iterator[Cluster]:
    """A PostgreSQL cluster of this test's own (it restarts it); skips without the binaries."""
    missing = [name for name in ("initdb", "pg_ctl", "postgres") if not (PG_BIN / name).exists()]
    if missing or (os.geteuid() == 0 and shutil.which("runuser") is None):
        reason = (
            f"no PostgreSQL binaries in {PG_BIN} (QUEUECTL_PG_BIN)" if missing else "no runuser"
        )
        if os.environ.get("QUEUECTL_REQUIRE_PG") == "1":
            pytest.fail(f"PostgreSQL required (QUEUECTL_REQUIRE_PG=1): {reason}")
        pytest.skip(reason)
    folder = Path(tempfile.mkdtemp(prefix="queuectl-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    cluster = Cluster(folder, _free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
