"""Real processes sharing one store: every job claimed exactly once, no lock errors."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import pytest

from queuectl.models import new_job
from queuectl.store import Store, open_store

CLAIMER = r"""
import sys
from queuectl.lifecycle import Outcome
from queuectl.store import open_store

target, owner = sys.argv[1], sys.argv[2]
store = open_store(target)
sys.stdin.readline()  # the start signal: every process starts claiming at once
outcomes = []
while True:
    claims = store.finish_and_claim(owner, outcomes, 7, None, 300).claims
    if not claims:
        break
    now = store.clock.now_ms()
    outcomes = [Outcome(c.id, c.attempt, 0, None, 0, token=c.token) for c in claims]
    print("\n".join(c.id for c in claims), flush=True)
store.close()
"""

ENQUEUER = r"""
import sys
from queuectl import Queue

target, name = sys.argv[1], sys.argv[2]
queue = Queue(target)
sys.stdin.readline()
for n in range(60):
    queue.enqueue("true", id=f"{name}-{n}")
queue.enqueue_many([{"command": "true", "id": f"{name}-batch-{n}"} for n in range(40)])
print(queue.enqueue("true", id=f"{name}-unique", unique_key="shared").id)
queue.close()
"""


@pytest.fixture
def store(target: str) -> Iterator[Store]:
    """On the real clock, as the processes are."""
    opened = open_store(target)
    yield opened
    opened.close()


def start(script: str, target: str, names: list[str]) -> list[subprocess.Popen[str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, target, name],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    return procs


def results(procs: list[subprocess.Popen[str]]) -> list[str]:
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "locked" not in err
        assert err == ""
        outputs.append(out)
    return outputs


def test_processes_claim_every_job_exactly_once(target: str, store: Store) -> None:
    ids = [f"job-{n:04}" for n in range(2000)]
    store.enqueue_many([new_job({"id": job_id, "command": "true"}) for job_id in ids])
    owners = [f"runner-{n}" for n in range(4)]
    outputs = results(start(CLAIMER, target, owners))
    claimed = Counter(line for out in outputs for line in out.split())
    assert sorted(claimed) == ids
    assert set(claimed.values()) == {1}
    assert store.counts() == {"default": {"completed": 2000}}
    assert all(job.attempts == 1 for job in store.list_jobs().jobs)


COMPACTOR = r"""
import sys
from queuectl.store import open_store

store = open_store(sys.argv[1])
store.compact_after = 0  # fold the deltas at every read, while the claimers append them
sys.stdin.readline()
while True:
    counts = store.counts()["default"]
    assert sum(counts.values()) == 2000, counts  # one snapshot: never half a compaction
    if counts.get("completed") == 2000:
        break
store.close()
"""


def test_counts_stay_exact_while_processes_claim_and_compact(
    target: str, store: Store, backend: str
) -> None:
    if backend != "postgres":
        pytest.skip("only PostgreSQL keeps counter deltas to compact")
    store.enqueue_many([new_job({"id": f"job-{n:04}", "command": "true"}) for n in range(2000)])
    compactors = start(COMPACTOR, target, ["compactor-0", "compactor-1"])
    results(start(CLAIMER, target, [f"runner-{n}" for n in range(4)]))
    results(compactors)
    assert store.counts() == {"default": {"completed": 2000}}
    assert store.attempts_by_queue() == {"default": {"completed": 2000}}


def test_processes_enqueue_at_once(target: str, store: Store) -> None:
    names = [f"p{n}" for n in range(8)]
    outputs = results(start(ENQUEUER, target, names))
    jobs = [job for job in store.list_jobs().jobs]
    [holder] = [job.id for job in jobs if job.unique_key == "shared"]
    assert {out.strip() for out in outputs} == {holder}
    jobs = [job for job in jobs if job.id != holder]
    assert len(jobs) == 8 * 100
    assert {job.id for job in jobs} == {
        f"{name}-{kind}{n}"
        for name in names
        for kind, count in (("", 60), ("batch-", 40))
        for n in range(count)
    }


WRITER = r"""
import sys
from queuectl.models import new_job
from queuectl.store import open_store

store = open_store(sys.argv[1])
store.enqueue_many([new_job({"id": sys.argv[2], "command": "true"})])
store.close()
"""


def write_elsewhere(target: str, job_id: str) -> None:
    subprocess.run([sys.executable, "-c", WRITER, target, job_id], check=True, timeout=60)


def test_a_second_store_on_the_same_file_keeps_the_first_one_current(
    target: str, store: Store, backend: str
) -> None:
    """Opening and closing another store in this process must not cost the first its locks
    (POSIX locks die with any close of the file): it would read a stale snapshot forever,
    and its writes could go to a WAL that another process has already deleted."""
    if backend != "sqlite":
        pytest.skip("a SQLite file's locks")
    store.enqueue_many([new_job({"id": "mine", "command": "true"})])
    other = open_store(target)
    other.close()
    write_elsewhere(target, "theirs-1")
    assert store.get("theirs-1") is not None
    write_elsewhere(target, "theirs-2")
    assert store.get("theirs-2") is not None
    store.enqueue_many([new_job({"id": "mine-later", "command": "true"})])
    fresh = open_store(target)
    try:
        assert fresh.get("mine-later") is not None
    finally:
        fresh.close()
