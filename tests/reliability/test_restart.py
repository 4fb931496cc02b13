"""Issue 6: PostgreSQL restarts in the middle of a run; runners ride it out, no job is lost
or run twice. The cluster is this test's own: the shared server is not touched."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from queuectl import Queue
from tests.reliability.conftest import Cluster, Runners, audit, check_final_state, job_command
from tests.support.runners import tagged, wait_until

JOBS = 300


def test_runners_ride_out_a_postgres_restart(
    private_pg: Cluster, runners: Runners, tmp_path: Path, tag: str
) -> None:
    log = tmp_path / "runs.log"
    with Queue(private_pg.url) as queue:
        ids = [f"job-{n}" for n in range(JOBS)]
        command = job_command(log, "sleep 0.1")
        queue.enqueue_many([{"id": job_id, "command": command} for job_id in ids])
    pair = [runners.start(private_pg.url, 4) for _ in range(2)]
    wait_until(lambda: log.exists() and log.read_text().count("\nE ") >= 40, 60, "40 jobs done")

    private_pg.restart()
    assert log.read_text().count("\nE ") < JOBS - 40  # the restart came in the middle

    with Queue(private_pg.url) as queue:
        wait_until(
            lambda: queue.status()["counts"]["completed"] == JOBS,
            90,
            "every job completed",
            step=0.25,
        )
        result = audit(log)
        assert result.problems == []
        assert check_final_state(queue, result, ids) == []
        assert Counter(run.job for run in result.runs) == dict.fromkeys(ids, 1)
        assert {job.attempts for job in queue.list()} == {1}
        assert queue.status()["counts"]["processing"] == 0
        assert {r.pid for r in queue.runners()} == {r.pid for r in pair}
    assert all(runner.process.poll() is None for runner in pair)
    runners.stop_all()
    assert tagged(tag) == []
