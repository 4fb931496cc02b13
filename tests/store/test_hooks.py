"""Hooks, reset and recent counts in the store (SPEC 9.9, 9.10), on every backend, fake clock."""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import Any

import pytest

from queuectl.errors import ConflictError, QueuectlError
from queuectl.hook import Event, made_by
from queuectl.lifecycle import Fence, Outcome
from queuectl.models import Job, new_job
from queuectl.store import Hook, Runner, Schedule, Store
from tests.support import fake_runner
from tests.support.clock import FakeClock

LEASE_S = 30.0
#: Claim a job (alone in its queue) and end its attempt; its new state.
run = partial(fake_runner.run, duration_ms=10)
ALL = ["completed", "failed", "dead", "cancelled"]


def hook(store: Store, name: str, events: list[str], queue: str | None = None, **job: Any) -> None:
    template = {"command": f"notify {name}", "cwd": "/", **job}
    store.add_hook(Hook(name, events, queue, template, store.now()))


def add(store: Store, job_id: str, **fields: Any) -> Job:
    return store.enqueue_many([new_job({"id": job_id, "command": "true", **fields})])[0]


def hook_jobs(store: Store) -> list[Job]:
    """The hook jobs, oldest first."""
    jobs = store.list_jobs().jobs
    return [job for job in reversed(jobs) if job.made_by is not None]


def events(store: Store) -> list[tuple[str, ...]]:
    """(made_by, event, job, queue, attempt, exit code, error) of every hook job, oldest first."""
    names = ("EVENT", "EVENT_JOB", "EVENT_QUEUE", "EVENT_ATTEMPT", "EVENT_EXIT_CODE", "EVENT_ERROR")
    return [
        (str(job.made_by), *(job.env[f"QUEUECTL_{name}"] for name in names))
        for job in hook_jobs(store)
    ]


def test_each_event_enqueues_one_hook_job_with_the_event_in_its_environment(
    store: Store, clock: FakeClock
) -> None:
    hook(store, "h", ALL, env={"KEEP": "1"})
    store.set_config("backoff_base", 1)
    add(store, "ok", queue="a")
    add(store, "bad", queue="b", max_retries=1)
    add(store, "later", queue="c")

    assert run(store, "ok") == "completed"
    assert run(store, "bad", 3) == "failed"
    clock.advance(60)
    assert run(store, "bad", 3) == "dead"
    store.cancel(["later"])

    assert events(store) == [
        ("hook h: completed of ok", "completed", "ok", "a", "1", "0", ""),
        ("hook h: failed of bad", "failed", "bad", "b", "1", "3", "exit code 3"),
        ("hook h: dead of bad", "dead", "bad", "b", "2", "3", "exit code 3"),
        ("hook h: cancelled of later", "cancelled", "later", "c", "0", "", "cancelled"),
    ]
    first = hook_jobs(store)[0]
    assert (first.command, first.state, first.queue, first.cwd) == (
        "notify h",
        "pending",
        "default",
        "/",
    )
    assert first.env["KEEP"] == "1"
    assert first.to_dict()["made_by"] == "hook h: completed of ok"
    assert "made_by" not in store.get("ok").to_dict()  # type: ignore[union-attr]


def test_a_runner_settling_by_its_claims_rules_fires_the_hooks(store: Store) -> None:
    """The runner's outcomes carry the retry rules of their claim (PostgreSQL may then settle
    them in one round trip): the hooks fire all the same."""
    hook(store, "h", ["completed", "failed"])
    add(store, "ok")
    add(store, "bad", max_retries=1)
    outcomes = []
    for c in store.finish_and_claim("r1", [], 2, None, LEASE_S).claims:
        assert c.max_retries is not None
        fence = Fence(c.attempt, c.token, c.max_retries, c.no_retry_exit_codes)
        code = 0 if c.id == "ok" else 3
        outcomes.append(Outcome(c.id, c.attempt, code, None, 10, fence=fence, token=c.token))
    settled = store.finish_and_claim("r1", outcomes, 0, None, LEASE_S).settled
    assert {job_id: s.state for job_id, s in settled.items()} == {
        "ok": "completed",
        "bad": "failed",
    }
    assert sorted((e[1], e[2]) for e in events(store)) == [("completed", "ok"), ("failed", "bad")]


def test_a_hook_fires_only_on_its_events_and_its_queue(store: Store) -> None:
    hook(store, "work-done", ["completed"], queue="work")
    hook(store, "any-dead", ["dead"])
    add(store, "w1", queue="work")
    add(store, "d1", queue="default")
    add(store, "w2", queue="work", max_retries=0)

    assert run(store, "w1") == "completed"
    assert run(store, "d1") == "completed"
    assert run(store, "w2", 1) == "dead"

    assert [e[0] for e in events(store)] == [
        "hook work-done: completed of w1",
        "hook any-dead: dead of w2",
    ]


def test_worker_lost_fires_failed_then_dead(store: Store, clock: FakeClock) -> None:
    hook(store, "h", ALL)
    store.set_config("backoff_base", 1)
    add(store, "lost", max_retries=1, queue="l")
    for _ in range(2):
        clock.advance(60)
        assert [c.id for c in store.finish_and_claim("gone", [], 1, ["l"], LEASE_S).claims] == [
            "lost"
        ]
        clock.advance(LEASE_S + 1)
        assert store.reap([]) == ["lost"]

    assert [e[1:] for e in events(store)] == [
        ("failed", "lost", "l", "1", "", "worker lost"),
        ("dead", "lost", "l", "2", "", "worker lost"),
    ]


def test_cascades_fire_cancelled_for_each_dependant(store: Store) -> None:
    hook(store, "h", ["dead", "cancelled"])
    add(store, "root", max_retries=0, queue="r")
    add(store, "child", depends_on=["root"], queue="c")
    add(store, "grandchild", depends_on=["child"], queue="g")
    add(store, "top", queue="t")
    add(store, "below", depends_on=["top"], queue="b")

    assert run(store, "root", 1) == "dead"
    store.cancel(["top"])

    assert sorted(e[1:4] for e in events(store)) == [
        ("cancelled", "below", "b"),
        ("cancelled", "child", "c"),
        ("cancelled", "grandchild", "g"),
        ("cancelled", "top", "t"),
        ("dead", "root", "r"),
    ]
    errors = {e[2]: e[6] for e in events(store)}
    assert errors["grandchild"] == "dependency root is dead"
    assert errors["below"] == "dependency top is cancelled"


def test_hook_jobs_fire_no_hooks(store: Store) -> None:
    hook(store, "h", ALL, max_retries=0)
    add(store, "job")
    assert run(store, "job") == "completed"
    (made,) = hook_jobs(store)
    claims = store.finish_and_claim("r1", [], 1, None, LEASE_S).claims
    assert [c.id for c in claims] == [made.id]
    outcome = Outcome(made.id, 1, 1, None, 10, token=claims[0].token)
    assert (
        store.finish_and_claim("r1", [outcome], 0, None, LEASE_S).settled[made.id].state == "dead"
    )
    add(store, "second")
    store.cancel(["second"])

    assert [e[0] for e in events(store)] == [
        "hook h: completed of job",
        "hook h: cancelled of second",
    ]


def test_a_hook_job_with_a_unique_key_held_is_not_enqueued_again(store: Store) -> None:
    hook(store, "once", ["completed"], unique_key="notify")
    add(store, "a", queue="a")
    add(store, "b", queue="b")
    assert run(store, "a") == "completed"
    assert run(store, "b") == "completed"
    assert [e[2] for e in events(store)] == ["a"]


def _refuse_hook_jobs(target: str) -> None:
    """Make the database itself refuse any hook job: the transaction that writes one fails."""
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(
                "CREATE FUNCTION refuse_hook_job() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'no hook job'; END $$"
            )
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON jobs FOR EACH ROW "
                "WHEN (NEW.made_by IS NOT NULL) EXECUTE FUNCTION refuse_hook_job()"
            )
        return
    conn = sqlite3.connect(target)
    conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON jobs WHEN new.made_by IS NOT NULL "
        "BEGIN SELECT RAISE(ABORT, 'no hook job'); END"
    )
    conn.commit()
    conn.close()


def test_a_hook_job_that_cannot_be_written_leaves_the_change_undone(
    store: Store, target: str
) -> None:
    """The settlement and its hook job are one transaction: a crash (here, a refused write)
    between them keeps both or neither, so a hook is never lost nor doubled."""
    hook(store, "h", ALL)
    add(store, "settled", queue="s")
    add(store, "cancelled", queue="c")
    (_claim,) = store.finish_and_claim("r1", [], 1, ["s"], LEASE_S).claims
    _refuse_hook_jobs(target)

    with pytest.raises(QueuectlError):
        store.finish_and_claim(
            "r1", [Outcome("settled", 1, 0, None, 10, token=_claim.token)], 0, None, LEASE_S
        )
    with pytest.raises(QueuectlError):
        store.cancel(["cancelled"])

    assert store.get("settled").state == "processing"  # type: ignore[union-attr]
    assert store.get("cancelled").state == "pending"  # type: ignore[union-attr]
    assert hook_jobs(store) == []


def test_hooks_are_listed_replaced_and_removed(store: Store) -> None:
    hook(store, "b", ["dead"])
    hook(store, "a", ["completed"], queue="q")
    hook(store, "b", ["cancelled"])
    assert [(h.name, h.events, h.queue) for h in store.hooks()] == [
        ("a", ["completed"], "q"),
        ("b", ["cancelled"], None),
    ]
    assert store.remove_hook("a") is True
    assert store.remove_hook("a") is False
    assert [h.name for h in store.hooks()] == ["b"]


def test_made_by_names_the_hook_event_and_job() -> None:
    event = Event("j1", "q", "dead", 3, 1, "exit code 1")
    assert made_by("notify", event) == "hook notify: dead of j1"


# -- reset (SPEC 9.10)


def _fill(store: Store, clock: FakeClock) -> None:
    hook(store, "h", ["completed"])
    add(store, "done", queue="a")
    assert run(store, "done") == "completed"
    add(store, "child", depends_on=["done"])
    add(store, "waiting")
    store.set_paused("a", True)
    store.set_config("max_retries", 7)
    now = store.now()
    store.add_schedule(
        Schedule("nightly", None, 3600, None, {"command": "true"}, now, None, now + 1)
    )


def test_reset_deletes_every_job_and_keeps_the_settings(store: Store, clock: FakeClock) -> None:
    _fill(store, clock)
    deleted = store.reset(False)

    assert deleted == {"jobs": 4, "attempts": 1}  # done, its hook job, child, waiting
    assert store.list_jobs().jobs == []
    assert store.counts() == {}, "the counters were not emptied with the jobs"
    assert store.history("done") == []
    assert store.output("done") is None
    assert [h.name for h in store.hooks()] == ["h"]
    assert [s.name for s in store.schedules()] == ["nightly"]
    assert store.queues() == {"a": True}
    assert store.config()["max_retries"] == 7
    add(store, "done")  # its id is free again, and it starts afresh
    assert store.history("done") == []


def test_reset_all_restores_the_defaults(store: Store, clock: FakeClock) -> None:
    from queuectl.config import DEFAULTS

    _fill(store, clock)
    deleted = store.reset(True)

    assert deleted == {
        "jobs": 4,
        "attempts": 1,
        "schedules": 1,
        "hooks": 1,
        "queues": 1,
        "config": 1,
    }
    assert store.list_jobs().jobs == []
    assert (store.hooks(), store.schedules(), store.queues()) == ([], [], {})
    assert store.config() == DEFAULTS
    add(store, "after", queue="z")
    assert run(store, "after") == "completed"
    assert hook_jobs(store) == []  # the hook is gone, not merely cached


def test_reset_is_refused_while_a_runner_is_registered(store: Store, clock: FakeClock) -> None:
    _fill(store, clock)
    store.register_runner(Runner("r9", "host", 1, 1, None, 0, 0))
    with pytest.raises(ConflictError, match="queuectl worker stop"):
        store.reset(True)
    assert len(store.list_jobs().jobs) == 4
    assert [h.name for h in store.hooks()] == ["h"]


# -- recent counts (SPEC 9.10)


def test_finished_since_counts_the_window_with_its_start(store: Store, clock: FakeClock) -> None:
    start = store.now()
    add(store, "c1", queue="a")
    assert run(store, "c1") == "completed"  # finished at start
    clock.advance(1)
    add(store, "d1", queue="b", max_retries=0)
    assert run(store, "d1", 1) == "dead"  # finished at start + 1 s
    add(store, "x1")
    store.cancel(["x1"])
    add(store, "f1", queue="f", max_retries=3)
    assert run(store, "f1", 1) == "failed"  # an attempt ended, the job did not finish
    add(store, "p1")  # never finished

    assert store.finished_since(start) == {"completed": 1, "dead": 1, "cancelled": 1}
    assert store.finished_since(start + 1) == {"completed": 0, "dead": 1, "cancelled": 1}
    assert store.finished_since(start + 1000) == {"completed": 0, "dead": 1, "cancelled": 1}
    assert store.finished_since(start + 1001) == {"completed": 0, "dead": 0, "cancelled": 0}
