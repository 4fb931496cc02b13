"""Arrays, batches and dependency conditions attacked through the CLI and one real runner per
module and store: bad SPECs leave nothing behind, every form runs each index once, `%N` holds,
batch commands touch their batch only, hooks fire once per finishing, conditions cascade."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from queuectl import Queue
from tests.hostile.conftest import Shared
from tests.support.cli import assert_clean_error
from tests.support.runners import wait_until

Cli = Callable[..., subprocess.CompletedProcess[str]]

BAD_SPECS = [
    "",
    "3-1",
    "1-3:0",
    "1,,2",
    "1-3,2",
    "1-3%0",
    "1-100000000",
    # a limit past any store's integer, and digits int() refuses or reads from other scripts
    "1-2%99999999999999999999",
    "1-2%1000001",
    "1-3%\u00b2",
    "\u0967-\u0969",
]


@pytest.mark.backends("sqlite")  # a SPEC is refused before the store is opened
def test_bad_array_specs_are_one_line_exit_2_and_leave_the_store_as_it_was(
    cli: Cli, queue: Queue, tmp_path: Path
) -> None:
    queue.enqueue("true", id="before")
    for spec in BAD_SPECS:
        result = cli("enqueue", "--array", spec, "--id", "arr", "-c", "true")
        assert_clean_error(result, 2, "--array")
    jobs = tmp_path / "jobs.json"
    jobs.write_text('{"command": "true"}')
    assert_clean_error(cli("enqueue", "--array", "1-2", "--id", "arr", "--file", str(jobs)), 2)
    assert [j.id for j in queue.list()] == ["before"]
    assert queue.batches() == []


def test_every_array_form_runs_each_index_once_with_its_index(shared: Shared) -> None:
    forms = {
        "form1": ("1-3", [1, 2, 3], None),
        "form2": ("0-6:2", [0, 2, 4, 6], None),
        "form3": ("1,5,9", [1, 5, 9], None),
        "form4": (" 1-4,10,20-30:5%2 ", [1, 2, 3, 4, 10, 20, 25, 30], 2),
    }
    for base, (spec, _, _) in forms.items():
        command = "echo $QUEUECTL_ARRAY_INDEX"
        result = shared.cli("enqueue", "--array", spec, "--id", base, "-c", command)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == [f"{base}.{i}" for i in forms[base][1]]
    ids = [f"{base}.{i}" for base, (_, indices, _) in forms.items() for i in indices]
    shared.finished(*ids)
    for base, (_, indices, limit) in forms.items():
        jobs = {j.id: j for j in shared.queue.list(batch=base)}
        assert sorted(jobs) == sorted(f"{base}.{i}" for i in indices)
        for index in indices:
            job_id = f"{base}.{index}"
            assert jobs[job_id].state == "completed"
            assert jobs[job_id].attempts == 1
            assert (shared.queue.output(job_id) or b"").strip() == str(index).encode()
        shown = shared.queue.batch(base)
        assert shown["concurrency"] == limit, shown
        assert shown["done"] == shown["total"] == len(indices), shown


#: A job that counts how many of its batch run at once (under a lock), and logs each count.
COUNTED = (
    "flock {d}/lock sh -c 'n=$(($(cat {d}/n 2>/dev/null || echo 0) + 1)); echo $n > {d}/n;"
    " echo $n >> {d}/peaks'; sleep 0.2;"
    " flock {d}/lock sh -c 'echo $(($(cat {d}/n) - 1)) > {d}/n'"
)


def test_a_batch_limit_holds_on_a_runner_with_more_workers(shared: Shared, tmp_path: Path) -> None:
    command = COUNTED.format(d=tmp_path)
    assert (
        shared.cli("enqueue", "--array", "1-8%2", "--id", "capped", "-c", command).returncode == 0
    )
    shared.finished(*(f"capped.{i}" for i in range(1, 9)))
    peaks = [int(n) for n in (tmp_path / "peaks").read_text().split()]
    assert len(peaks) == 8
    assert max(peaks) <= 2, peaks
    assert all(j.state == "completed" for j in shared.queue.list(batch="capped"))


def test_batch_commands_touch_their_batch_only(shared: Shared) -> None:
    """Names that a LIKE or a prefix would confuse: `iso`, `iso.1` (an array named after a job
    of iso's), `iso_c` and `isoxc`."""
    q = shared.queue
    q.enqueue_array("1-2", {"id": "iso", "command": "sleep 60", "held": True})
    q.enqueue_array("1-2", {"id": "iso.1", "command": "sleep 60", "held": True})
    q.enqueue("sleep 60", batch="iso_c", held=True)
    q.enqueue("sleep 60", batch="isoxc", held=True)
    before = {j.id: j.to_dict() for j in shared.queue.list(batch="iso.1")}
    before.update({j.id: j.to_dict() for j in shared.queue.list(batch="isoxc")})
    assert shared.cli("cancel", "--batch", "iso").returncode == 0
    assert shared.cli("cancel", "--batch", "iso_c").returncode == 0
    assert {j.state for j in shared.queue.list(batch="iso")} == {"cancelled"}
    assert {j.state for j in shared.queue.list(batch="iso_c")} == {"cancelled"}
    after = {j.id: j.to_dict() for j in shared.queue.list(batch="iso.1")}
    after.update({j.id: j.to_dict() for j in shared.queue.list(batch="isoxc")})
    assert after == before
    for command in (["cancel"], ["requeue"], ["dlq", "retry"], ["wait"]):
        assert_clean_error(shared.cli(*command, "--batch", "iso.9"), 1, "iso.9")
    assert after == {
        j.id: j.to_dict() for name in ("iso.1", "isoxc") for j in shared.queue.list(batch=name)
    }
    q.cancel_all(batch="iso.1")
    q.cancel_all(batch="isoxc")


def test_batch_hooks_conditions_and_wait_exit_codes(shared: Shared, tmp_path: Path) -> None:
    """One array with a job that dies; what waits on it by each condition; the batch's hooks;
    then the batch run again by `dlq retry --batch` and finished again."""
    events = tmp_path / "events"
    q = shared.queue
    hook = f'echo "$QUEUECTL_EVENT $QUEUECTL_EVENT_BATCH" >> {events}'
    # on the batch's own queue: the module's other batches never fire it
    q.add_hook("hb", "batch_completed,batch_finished", {"command": hook}, queue="hbq")
    try:
        # A running runner sees a new hook within a second (hooks.md): batches of one job
        # until one fires it, before the array under test.
        def probed() -> bool:
            batch = f"hbprobe{len(q.batches())}"
            shared.finished(q.enqueue("true", queue="hbq", batch=batch).id)
            return any((j.made_by or "").endswith(f" of batch {batch}") for j in q.list())

        wait_until(probed, 30, "the runner to see the hook", step=0.2)
        flag = tmp_path / "fixed"
        command = f'[ "$QUEUECTL_ARRAY_INDEX" -ne 2 ] || [ -e {flag} ]'
        array = ["--array", "1-3%2", "--id", "hb", "--queue", "hbq", "--max-retries", "0"]
        assert shared.cli("enqueue", *array, "-c", command).returncode == 0
        q.enqueue_many(
            [
                {"id": "hb-reduce", "command": "true", "after_batch": ["hb"]},
                {
                    "id": "hb-any",
                    "command": "true",
                    "depends_on": [{"id": "hb.2", "on": "finished"}],
                },
                {
                    "id": "hb-fail",
                    "command": "true",
                    "depends_on": [{"id": "hb.2", "on": "failed"}],
                },
                {
                    "id": "hb-ok-fail",
                    "command": "true",
                    "depends_on": [{"id": "hb.1", "on": "failed"}],
                },
                {"id": "hb-chain", "command": "true", "depends_on": ["hb-ok-fail"]},
                {
                    "id": "hb-chain-any",
                    "command": "true",
                    "depends_on": [{"id": "hb-chain", "on": "finished"}],
                },
            ]
        )
        waited = shared.cli("wait", "--batch", "hb", "--timeout", "60")
        assert waited.returncode == 1, waited.stderr
        others = ["hb-reduce", "hb-any", "hb-fail", "hb-ok-fail", "hb-chain", "hb-chain-any"]
        shared.finished(*others)
        states = {j: shared.queue.get(j).state for j in ["hb.1", "hb.2", "hb.3", *others]}
        assert states == {
            "hb.1": "completed",
            "hb.2": "dead",
            "hb.3": "completed",
            "hb-reduce": "cancelled",
            "hb-any": "completed",
            "hb-fail": "completed",
            "hb-ok-fail": "cancelled",
            "hb-chain": "cancelled",
            "hb-chain-any": "completed",
        }
        assert "hb.1" in (shared.queue.get("hb-ok-fail").last_error or "")
        assert "hb-ok-fail" in (shared.queue.get("hb-chain").last_error or "")

        def hooked(count: int) -> bool:
            """`count` hook jobs were made, and every one of them ran."""
            made = [j for j in q.list() if (j.made_by or "").endswith(" of batch hb")]
            return len(made) >= count and all(j.finished for j in made)

        def lines() -> list[str]:
            said = events.read_text().splitlines() if events.exists() else []
            return [line for line in said if line.endswith(" hb")]

        wait_until(lambda: hooked(1), 30, "the batch hook")
        assert lines() == ["batch_finished hb"]

        flag.touch()
        retried = shared.cli("dlq", "retry", "--batch", "hb")
        assert retried.returncode == 0, retried.stderr
        assert shared.cli("wait", "--batch", "hb", "--timeout", "60").returncode == 0
        wait_until(lambda: hooked(2), 30, "the second batch hook")
        assert lines() == ["batch_finished hb", "batch_completed hb"]
        # nothing dead is left: a no-op, and no third finishing
        assert shared.cli("dlq", "retry", "--batch", "hb").returncode in (0, 1)
        assert shared.cli("wait", "--batch", "hb", "--timeout", "1").returncode == 0
        assert hooked(2)
        assert not hooked(3)
    finally:
        q.remove_hook("hb")


def test_wait_batch_times_out_with_124_and_cancel_batch_makes_it_1(shared: Shared) -> None:
    assert (
        shared.cli("enqueue", "--array", "1-3", "--id", "wt", "--hold", "-c", "true").returncode
        == 0
    )
    result = shared.cli("wait", "--batch", "wt", "--timeout", "0.3")
    assert result.returncode == 124, result.stderr
    assert "Traceback" not in result.stderr
    assert shared.cli("cancel", "--batch", "wt").returncode == 0
    assert shared.cli("wait", "--batch", "wt", "--timeout", "10").returncode == 1
    assert {j.state for j in shared.queue.list(batch="wt")} == {"cancelled"}


@pytest.mark.backends("sqlite")  # a limit is refused before the store is written
def test_batch_set_refuses_a_bad_limit_and_keeps_the_old(cli: Cli, queue: Queue) -> None:
    queue.enqueue_array("1-2%3", {"id": "bs", "command": "true", "held": True})
    for limit in ("0", "99999999999999999999", "x", "\u0665"):
        assert_clean_error(cli("batch", "set", "bs", "--concurrency", limit), 2, "concurrency")
    assert queue.batch("bs")["concurrency"] == 3


def test_a_batch_finished_by_an_expiry_fires_its_hook_and_lets_go_of_its_dependants(
    shared: Shared, tmp_path: Path
) -> None:
    """The runners' expiry is a cancel like any other: the batch it finishes fires
    `batch_finished` and cancels what waits for the batch (it once did neither: the
    dependant waited forever, 'batch to complete (1/1 finished)')."""
    q = shared.queue
    events = tmp_path / "events"
    hook = f'echo "$QUEUECTL_EVENT $QUEUECTL_EVENT_BATCH" >> {events}'
    q.add_hook("hx", "batch_completed,batch_finished", {"command": hook}, queue="exq")
    try:
        # the deadline is past the second in which a runner sees a new hook
        q.enqueue("true", id="ex1", queue="exq", batch="exb", held=True, expires="2s")
        q.enqueue("true", id="ex2", queue="exq", batch="exb")
        q.enqueue("true", id="ex-after", after_batch=["exb"])
        q.enqueue("true", id="ex-after-any", depends_on=[{"id": "ex1", "on": "finished"}])
        shared.finished("ex1", "ex2", "ex-after", "ex-after-any", timeout=30)
        assert q.get("ex1").last_error == "expired before it started"
        assert q.get("ex-after").state == "cancelled"
        assert "batch exb" in (q.get("ex-after").last_error or "")
        assert q.get("ex-after-any").state == "completed"
        wait_until(
            lambda: any((j.made_by or "").endswith(" of batch exb") for j in q.list()),
            10,
            "the batch's hook job",
        )
        [made] = [j for j in q.list() if (j.made_by or "").endswith(" of batch exb")]
        shared.finished(made.id)
        assert events.read_text().splitlines() == ["batch_finished exb"]
    finally:
        q.remove_hook("hx")
