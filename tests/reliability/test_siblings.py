"""Two runners on one host (one a queue, say): neither takes the other's healthy job, whatever
its lease says; a runner of another host keeps its job by renewing its lease in time."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.store import open_store
from tests.support.clock import stepped_clock
from tests.support.runners import (  # noqa: F401 - fixtures used here
    GATED,
    RunnerProcess,
    process_env,
    runner_of,
    start_runner,
    wait_beats,
    wait_until,
)

StartRunner = Callable[..., RunnerProcess]
LEASE_S = 9  # a heartbeat every 3 s, the idle sibling's store read every 2 s


def execute(target: str, statement: str, *params: object) -> None:
    """One statement (`?` placeholders) written to the store behind its back."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(statement.replace("?", "%s"), params)  # type: ignore[arg-type]
        return
    conn = sqlite3.connect(target, timeout=30, isolation_level=None)
    try:
        conn.execute(statement, params)
    finally:
        conn.close()


def start_gated(
    queue: Queue, start: StartRunner, tmp_path: Path, **env: str
) -> tuple[RunnerProcess, RunnerProcess, Path]:
    """A runner on queue `a` running a job that waits for `go`, and an idle sibling on queue
    `b`; both with the environment `env`."""
    queue.set_config("lease_seconds", LEASE_S)
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="own", queue="a", max_retries=0)
    first = start("--queue", "a", env=env)
    first.logged("started own")
    wait_until(runs.exists, 10, "the job to start")
    sibling = start("--queue", "b", env=env)
    return first, sibling, go


def finish(queue: Queue, first: RunnerProcess, sibling: RunnerProcess, go: Path) -> None:
    """The job is still its first attempt, runs to its end and completes."""
    job = queue.get("own")
    assert (job.state, job.attempts) == ("processing", 1), "the sibling recovered a live job"
    go.touch()
    done = wait_until(
        lambda: (j := queue.get("own")).state == "completed" and j, 20, "the job to complete"
    )
    assert done.attempts == 1
    assert "its runner was lost" not in sibling.log()
    assert "no longer ours" not in first.log()


def test_a_sibling_does_not_reap_a_live_runners_job_whose_lease_ran_out(
    queue: Queue,
    target: str,
    start_runner: StartRunner,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    first, sibling, go = start_gated(queue, start_runner, tmp_path)
    store = open_store(target)
    try:
        wait_beats(store, first.pid, 1)  # just beaten: its next beat is a third of a lease away
        # What a store outage longer than the lease leaves behind (the first runner's renewals
        # did not land, and the sibling got through first): its lease and heartbeat stale.
        past_ms = queue.now_ms() - 2 * LEASE_S * 1000
        execute(target, "UPDATE jobs SET lease_expires_at = ? WHERE id = 'own'", past_ms)
        execute(target, "UPDATE runners SET heartbeat_at = ? WHERE pid = ?", past_ms, first.pid)
        wait_beats(store, sibling.pid, 1)  # the sibling has read the store since
        wait_until(
            lambda: (
                (j := queue.get("own")).state != "processing"
                or (j.lease_expires_at_ms or 0) > queue.now_ms()
            ),
            2 * LEASE_S,
            "the first runner to renew its lease",
            step=0.1,
        )
    finally:
        store.close()
    finish(queue, first, sibling, go)


@pytest.mark.backends("sqlite")  # on PostgreSQL the store's clock is the database's
def test_a_wall_clock_step_does_not_make_a_sibling_reap_a_live_runners_job(
    queue: Queue,
    start_runner: StartRunner,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    first, sibling, go = start_gated(queue, start_runner, tmp_path, **stepped_clock(offset))
    wait_beats(queue, first.pid, 1)
    stepped_ms = queue.now_ms() + 3 * LEASE_S * 1000
    offset.write_text(f"+{3 * LEASE_S}\n")  # an NTP step of the whole host
    # The first runner's next beat, stamped by the stepped clock: the sibling read the store
    # several times before it, with every lease of the first runner expired.
    wait_until(
        lambda: (
            queue.get("own").state != "processing"
            or ((r := runner_of(queue, first.pid)) and r.heartbeat_at_ms > stepped_ms)
        ),
        2 * LEASE_S,
        "the first runner to beat on the stepped clock",
        step=0.1,
    )
    finish(queue, first, sibling, go)


@pytest.mark.backends("sqlite")  # on PostgreSQL every lease is stamped by the database's clock
def test_a_runner_of_another_host_renews_its_lease_before_it_runs_out(
    queue: Queue,
    start_runner: StartRunner,  # noqa: F811 - the imported fixture
    tmp_path: Path,
) -> None:
    # A runner whose clock lags by half a lease stamps leases that run out half a lease early
    # for the others: renewed every third of a lease, they never run out; renewed once a
    # lease, they are out for half of every lease, and a busy sibling reads the store each
    # second. (Another host's runner: only the lease tells whether it lives.)
    lease_s = 6
    queue.set_config("lease_seconds", lease_s)
    lag = tmp_path / "faketime"
    lag.write_text(f"-{lease_s // 2}\n")
    runs, go = tmp_path / "runs", tmp_path / "go"
    queue.enqueue(GATED.format(runs=runs, go=go), id="far", queue="a", max_retries=0)
    queue.enqueue(GATED.format(runs=tmp_path / "busy", go=go), id="busy", queue="b")
    far = start_runner(
        "--queue", "a", env={"QUEUECTL_HOSTNAME": "other-host", **stepped_clock(lag)}
    )
    far.logged("started far")
    sibling = start_runner("--queue", "b")
    sibling.logged("started busy")
    seen: set[int] = set()

    def renewed_thrice() -> bool:
        job = queue.get("far")
        if job.state != "processing":
            return True
        seen.add(job.lease_expires_at_ms or 0)
        return len(seen) > 3

    wait_until(renewed_thrice, 4 * lease_s, "three renewals of the lease", step=0.1)
    job = queue.get("far")
    assert (job.state, job.attempts) == ("processing", 1), "a live runner's lease ran out"
    go.touch()
    wait_until(lambda: queue.get("far").state == "completed", 20, "the job to complete")
    assert "its runner was lost" not in sibling.log()
