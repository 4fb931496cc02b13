"""Issue 6: several hosts (runners with distinct QUEUECTL_HOSTNAME) share one queue.

Each runner is its own "host": none can check another's pid, so a runner that dies is
recognised only when its lease expires.
"""

from __future__ import annotations

import random
from pathlib import Path

from queuectl import Queue
from tests.reliability.conftest import (
    Runners,
    audit,
    check_final_state,
    job_command,
    kill_runner,
)
from tests.support.runners import tagged, wait_until

HOSTS = 4
WORKERS = 4
JOBS = 2000


def enqueue(queue: Queue, log: Path, count: int, work: str) -> list[str]:
    ids = [f"job-{n}" for n in range(count)]
    command = job_command(log, work)
    queue.enqueue_many([{"id": job_id, "command": command} for job_id in ids])
    return ids


def wait_drained(queue: Queue, count: int, timeout: float) -> None:
    def drained() -> bool:
        counts = queue.status()["counts"]
        assert counts["dead"] == 0, counts
        return counts["completed"] == count

    wait_until(drained, timeout, f"{count} completed jobs", step=0.25)


def test_several_hosts_run_every_job_exactly_once(
    target: str, runners: Runners, tmp_path: Path, tag: str
) -> None:
    log = tmp_path / "runs.log"
    hosts = [f"host-{n}" for n in range(1, HOSTS + 1)]
    for host in hosts:
        runners.start(target, WORKERS, host)
    with Queue(target) as queue:
        ids = enqueue(queue, log, JOBS, ":")
        wait_drained(queue, JOBS, 90)

        result = audit(log)
        assert result.problems == []
        assert check_final_state(queue, result, ids) == []
        assert result.repeated == 0
        assert {len(runs) for runs in result.by_job.values()} == {1}
        assert {job.attempts for job in queue.list()} == {1}
        assert result.hosts() == set(hosts)  # every host took part
    assert len(runners.alive()) == HOSTS
    runners.stop_all()
    assert tagged(tag) == []  # no job outlived its runner


def test_a_host_killed_mid_run_loses_nothing(
    target: str, runners: Runners, tmp_path: Path, tag: str
) -> None:
    log = tmp_path / "runs.log"
    with Queue(target) as queue:
        # Other hosts cannot check a dead runner's pid: its jobs wait for their lease.
        queue.set_config("lease_seconds", 3)
        hosts = [f"host-{n}" for n in range(1, HOSTS + 1)]
        started = [runners.start(target, WORKERS, host) for host in hosts]
        ids = enqueue(queue, log, JOBS, "sleep 0.01")
        wait_until(
            lambda: queue.status()["counts"]["completed"] >= JOBS // 4,
            60,
            "a quarter done",
            step=0.1,
        )
        victim = random.choice(started)
        in_flight = kill_runner(victim, log, busy=True)
        wait_drained(queue, JOBS, 90)

        result = audit(log)
        assert result.problems == []
        assert check_final_state(queue, result, ids) == []
        cut = [r for r in result.runs if r.runner_pid == victim.pid and r.end_pos is None]
        assert in_flight >= 1
        for run in cut:  # run again, by another host, as its next attempt
            again = result.by_job[run.job][-1]
            assert (again.attempt, again.end_pos is not None) == (run.attempt + 1, True)
            assert again.runner_pid != victim.pid
        # Also repeated: jobs it ran to their end but died before recording.
        assert result.repeated >= len(cut)
        assert all(
            runs[0].runner_pid == victim.pid for runs in result.by_job.values() if len(runs) > 1
        )
        assert queue.status()["counts"]["processing"] == 0
    assert len(runners.alive()) == HOSTS - 1
    runners.stop_all()
    assert tagged(tag) == []
