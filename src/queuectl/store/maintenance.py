"""Runners and maintenance: registration, heartbeats and leases, reaping the dead, retention,
and firing schedules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from queuectl.config import DEFAULTS
from queuectl.errors import QueuectlError
from queuectl.models import new_job
from queuectl.store import rows
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.records import Firing, Housekeeping, Runner, Schedule

if TYPE_CHECKING:
    from queuectl.store.actions import Actions
    from queuectl.store.enqueue import Enqueue
    from queuectl.store.settle import Settle

#: How long the per-minute counts of what attempts cost are kept (for `status --since`).
USAGE_KEPT_MS = 7 * 86_400_000


class Registry(Flow):
    """The runners registered: their registration, heartbeats (which renew their leases), and
    the list readers show. Needs no other flow, so a reader of runners loads no more."""

    @operation(runner=True)
    def register_runner(self, runner: Runner) -> None:
        now = self.db.now()
        runner.started_at_ms = runner.heartbeat_at_ms = now
        with self.db.transaction() as conn:
            conn.execute(
                self.db.q["register_runner"],
                (
                    runner.id,
                    runner.host,
                    runner.pid,
                    runner.pid_started,
                    runner.workers,
                    None if runner.queues is None else self.db.json(list(runner.queues)),
                    now,
                    now,
                    self.db.json(list(runner.enforces)),
                    self.db.json(list(runner.tags)) if runner.tags else None,
                ),
            )
            # The other runners learn of it at once: on this host they watch its process, and
            # recover its jobs within a second should it die young.
            self.db.wake(conn)

    @operation(runner=True)
    def heartbeat(self, owner: str, lease_s: float) -> bool | None:
        now = self.db.now()
        with self.db.transaction() as conn:
            self.db.refuse_newer_schema(conn)
            row = conn.execute(self.db.q["beat_runner"], (now, owner)).fetchone()
            until = now + round(lease_s * 1000)
            conn.execute(self.db.q["renew_leases"], (until, owner))
            conn.execute(self.db.q["renew_dying"], (until, owner))
        return None if row is None else bool(row["stop_requested"])

    @operation()
    def unregister_runner(self, owner: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(self.db.q["unregister_runner"], (owner,))

    @operation()
    def runners(self) -> list[Runner]:
        conn = self.db.connection()
        running: dict[str, list[str]] = {}
        for row in conn.execute(self.db.q["running_jobs"]):
            running.setdefault(row["lease_owner"], []).append(row["id"])
        return [
            rows.runner(
                r,
                None if r["queues"] is None else self.db.from_json(r["queues"]),
                running.get(r["id"], []),
                None if r["enforces"] is None else self.db.from_json(r["enforces"]),
                None if r["tags"] is None else self.db.from_json(r["tags"]),
            )
            for r in conn.execute(self.db.q["runners_listed"]).fetchall()
        ]


class Maintenance(Flow):
    """What runners do besides the exchange, and what keeps the store tidy."""

    def __init__(self, db: Dialect, enqueue: Enqueue, settle: Settle, actions: Actions) -> None:
        super().__init__(db)
        self.enqueue, self.settle, self.actions = enqueue, settle, actions

    @operation(runner=True)
    def expire(self, states: Sequence[str], finished_before_ms: int, batch: int) -> int:
        return self.actions.delete_finished(states, finished_before_ms, 0, batch)[0]

    @operation(runner=True)
    def forget_finished_minutes(self, before_ms: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(self.db.q["forget_finished_minutes"], {"since": before_ms})
            conn.execute(self.db.q["forget_usage_minutes"], {"since": before_ms - USAGE_KEPT_MS})

    @operation(runner=True)
    def housekeeping(
        self, owner: str, queues: Sequence[str] | None, tags: Sequence[str] = ()
    ) -> Housekeeping:
        params = {
            "owner": owner,
            "now": self.db.now(),
            "queues": None if queues is None else self.db.array(queues),
            "tags": self.db.array(tags),
            "deltas": self.db.compact_after + 1,
        }
        row = self.db.connection().execute(self.db.q["housekeeping"], params).fetchone()
        if int(row["deltas"]) > self.db.compact_after:
            self.db.compact_counts(int(row["deltas"]))
        config = dict(DEFAULTS)
        for key, value in (self.db.json_value(row["config"]) or {}).items():
            if key in config:
                config[key] = value
        next_schedule = row["next_schedule"]
        return Housekeeping(
            owned={job_id: attempt for job_id, attempt in self.db.json_value(row["owned"]) or []},
            runners=[
                rows.runner(r, r["queues"], []) for r in self.db.json_value(row["runners"]) or []
            ],
            expired=bool(row["expired"]),
            next_schedule_ms=None if next_schedule is None else int(next_schedule),
            startable=bool(row["startable"]),
            config=config,
        )

    @operation()
    def request_stop(self) -> int:
        return self._tell_runners("request_stop")

    @operation()
    def withdraw_stop(self) -> int:
        return self._tell_runners("withdraw_stop")

    def _tell_runners(self, statement: str) -> int:
        """Run a statement that changes runners' rows, and wake them; how many it reached."""
        with self.db.transaction() as conn:
            count = int(conn.execute(self.db.q[statement]).rowcount)
            self.db.wake(conn)
        return count

    @operation(runner=True)
    def reap(self, dead_owners: Sequence[str], exclude: Sequence[str] = ()) -> list[str]:
        from queuectl.lifecycle import Outcome  # runners reap; readers of runners load none of it

        now = self.db.now()
        expired = {"now": now, "exclude": self.db.array(exclude)}
        dying = {**expired, "owners": self.db.array(dead_owners)}
        if (
            not dead_owners
            and not self.db.connection().execute(self.db.q["expired_jobs"], expired).fetchone()
            and not self.db.connection().execute(self.db.q["expired_dying"], dying).fetchone()
        ):
            return []
        recovered: list[str] = []
        with self.db.transaction() as conn:
            # Cancelled attempts that nobody is left to report gone (their watchdog kills them).
            for row in conn.execute(self.db.q["expired_dying"], dying).fetchall():
                self.settle.let_go(conn, row["lease_owner"], [(row["id"], row["token"])])
            victims: dict[tuple[str, int, int, str], None] = {}
            for owner in dead_owners:
                for row in conn.execute(self.db.q["jobs_of_owner"], (owner,)).fetchall():
                    victims[(row["id"], row["attempts"], row["token"], owner)] = None
                conn.execute(self.db.q["unregister_runner"], (owner,))
            for row in conn.execute(self.db.q["expired_jobs"], expired).fetchall():
                victims[(row["id"], row["attempts"], row["token"], row["lease_owner"])] = None
            for job_id, attempt, token, owner in victims:
                lost = Outcome(job_id, attempt, None, "worker lost", None, token=token)
                recovered += self.settle.settle(conn, owner, [lost], now)
            if recovered:
                self.db.wake(conn)
        return recovered

    # -- schedules

    @operation()
    def add_schedule(self, schedule: Schedule) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                self.db.q["upsert_schedule"],
                {
                    "name": schedule.name,
                    "cron": schedule.cron,
                    "every_s": schedule.every_s,
                    "tz": schedule.tz,
                    "job": self.db.json(schedule.job),
                    "now": schedule.created_at_ms,
                    "next_at": schedule.next_at_ms,
                },
            )
            self.db.wake(conn)

    @operation()
    def remove_schedule(self, name: str) -> bool:
        with self.db.transaction() as conn:
            return bool(conn.execute(self.db.q["delete_schedule"], (name,)).rowcount == 1)

    @operation()
    def schedules(self) -> list[Schedule]:
        return [
            rows.schedule(r, self.db.from_json)
            for r in self.db.connection().execute(self.db.q["schedules"])
        ]

    @operation(runner=True)
    def next_schedule_ms(self) -> int | None:
        value = self.db.value(self.db.connection(), "next_schedule")
        return None if value is None else int(value)

    @operation(runner=True)
    def fire_schedules(self) -> list[Firing]:
        # A schedule another runner is firing at the same moment is skipped (locked on
        # PostgreSQL; SQLite has one writer), so a slot fires once; replaying after a lost
        # COMMIT finds the slot moved on already.
        from queuectl.schedule import next_slot_ms

        now = self.db.now()
        fired: list[Firing] = []
        with self.db.transaction() as conn:
            default_retries = int(self.db.read_config(conn)["max_retries"])
            due = [
                rows.schedule(r, self.db.from_json)
                for r in conn.execute(self.db.q["due_schedules"], (now,))
            ]
            for schedule in due:
                fired.append(self._fire(conn, schedule, now, default_retries))
                next_at = next_slot_ms(
                    schedule.cron, schedule.every_s, schedule.tz, schedule.created_at_ms, now
                )
                conn.execute(
                    self.db.q["advance_schedule"],
                    {"now": now, "next_at": next_at, "name": schedule.name},
                )
            if fired:
                self.db.wake(conn)
        return fired

    def _fire(self, conn: Any, schedule: Schedule, now: int, default_retries: int) -> Firing:
        """Enqueue one slot's job inside a savepoint: one bad schedule spoils no other."""
        from queuectl.schedule import slot_job_id

        job_id = slot_job_id(schedule.name, schedule.next_at_ms)
        conn.execute(self.db.q["savepoint"])
        try:
            job = new_job(schedule.job)
            limited = self.enqueue.open_batches(conn, [job], now)
            held = self.enqueue.insert_one(
                conn, job, job_id, now, default_retries, job.batch in limited
            )
        except (QueuectlError, self.db.unique_violation) as exc:
            conn.execute(self.db.q["rollback_savepoint"])
            error = str(exc) if isinstance(exc, QueuectlError) else f"job {job_id!r} already exists"
            return Firing(schedule.name, None, error)
        conn.execute(self.db.q["release_savepoint"])
        return Firing(schedule.name, held or job_id, None)
