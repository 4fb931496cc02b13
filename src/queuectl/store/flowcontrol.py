"""Flow control: claims under queues' concurrency and rate limits and jobs' locks, and the
limits themselves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuectl.flow import window_opens_at
from queuectl.models import ALL_LIMITS, LIMITS
from queuectl.store.dialect import Flow, operation
from queuectl.store.records import Ledger, QueueSettings

FLOW_SLACK = 4  # candidates read beyond a limited queue's room (see FlowControl.claim)
#: What a ledger notes as the "queue" of a claim holding a limited batch's slot: no queue's
#: name can start with it, so a slot it frees wakes the runners as a queue's does.
BATCH_SLOT = "\x00batch "


class FlowControl(Flow):
    """The claim that flow control may hold jobs back from, and the queues' limits."""

    def claim(
        self, conn: Any, params: dict[str, Any], ledger: Ledger
    ) -> tuple[list[Any], int | None]:
        """Claim under flow control: the claimed rows, and when a rate window next lets a job
        start (None: no rate holds one back).

        Limited queues' rows are locked first (PostgreSQL; SQLite's writer is alone), in name
        order, then those of the limited batches with a job that may start, so claimers of a
        limited queue or batch take turns and each counts what the previous one committed.
        With concurrency limits only (of queues, or else of batches) and no job taking a lock,
        one statement then counts and claims. Otherwise a lock key is taken (an advisory lock
        on PostgreSQL, skipped when another claimer has it) before its holder is looked up in
        a new statement, and candidates of four kinds are chosen in claim order until `want`:
        a limited queue's within its room, a limited batch's within its own, one job per lock.
        """
        db, q = self.db, self.db.q
        now, want = params["now"], params["want"]
        locking = {"queues": params["queues"], "names": db.array([]), "batches": db.array([])}
        limits = conn.execute(q["flow_lock_queues"], locking).fetchall()
        batches: list[Any] = []  # none to read when the limited queues' rows say so
        if not limits or any(r["batches_due"] for r in limits):
            batches = conn.execute(q["flow_lock_batches"], locking).fetchall()
        names = [r["name"] for r in limits]
        ledger.counted = counted_names(limits, batches, params["enforces"])
        if ledger.counted is not None:
            queues, limited = split_counted(ledger.counted)
            counted = {**params, "names": db.array(queues), "batches": db.array(limited)}
            one = "flow_claim_batches" if limited else "flow_claim_counted"
            taken = conn.execute(q[one], counted).fetchall()
            hold(ledger, taken, names)
            return taken, None
        room: dict[str, int] = {}
        windows: dict[str, tuple[int, int, list[int]]] = {}  # queue: (jobs, ms, starts)
        candidates: list[Any] = []
        running: dict[str, int] = {}
        if names:
            counts = conn.execute(q["flow_queues"], {"names": db.array(names)})
            running = {r["name"]: int(r["running"]) for r in counts.fetchall()}
        for r in limits:
            name, allowed = r["name"], want
            if r["concurrency"] is not None:
                allowed = min(allowed, r["concurrency"] - running.get(name, 0))
            if r["rate_jobs"] is not None:
                window = {"queue": name, "since": now - r["rate_ms"]}
                conn.execute(q["flow_prune_starts"], window)
                starts = [
                    int(s["started_at"]) for s in conn.execute(q["flow_window_starts"], window)
                ]
                windows[name] = (r["rate_jobs"], r["rate_ms"], starts)
                allowed = min(allowed, r["rate_jobs"] - len(starts))
            room[name] = max(0, allowed)
            if room[name]:
                # A few more than the room: some may share a lock with a job chosen first.
                found = {
                    "now": now,
                    "queue": name,
                    "n": room[name] + FLOW_SLACK,
                    "enforces": params["enforces"],
                    "tags": params["tags"],
                }
                candidates += conn.execute(q["flow_queue_candidates"], found).fetchall()
        others = {
            "now": now,
            "queues": params["queues"],
            "want": want,
            "enforces": params["enforces"],
            "tags": params["tags"],
        }
        candidates += conn.execute(q["flow_lock_candidates"], others).fetchall()
        candidates += conn.execute(q["flow_free_candidates"], others).fetchall()
        # The jobs of batches with a concurrency limit (the others' candidates leave them out),
        # each batch within its room, as a limited queue is.
        in_batch: dict[int, str] = {}  # seq: its limited batch
        batch_room = self._batch_room(conn, [r for r in batches if r["waiting"]], want)
        for name, allowed in batch_room.items():
            if allowed:
                found = {
                    "batch": name,
                    "queues": params["queues"],
                    "n": allowed + FLOW_SLACK,
                    "enforces": params["enforces"],
                    "tags": params["tags"],
                }
                for c in conn.execute(q["flow_batch_candidates"], found).fetchall():
                    in_batch[c["seq"]] = name
                    candidates.append(c)
        candidates.sort(key=lambda r: (-r["priority"], r["run_at"], r["seq"]))
        chosen: list[int] = []
        keys: set[str] = set()
        for c in candidates:
            if len(chosen) == want:
                break
            queue, key, batch = c["queue"], c["lock_key"], in_batch.get(c["seq"])
            if room.get(queue, 1) <= 0 or key in keys:
                continue
            if batch is not None and batch_room[batch] <= 0:
                continue
            if key is not None and not self._take_lock(conn, key):
                continue
            if queue in room:
                room[queue] -= 1
            if batch is not None:
                batch_room[batch] -= 1
            if key is not None:
                keys.add(key)
            chosen.append(c["seq"])
        if not chosen:
            rows: list[Any] = []
        else:
            claim = {**params, "seqs": db.array(chosen)}
            rows = conn.execute(q["flow_claim"], claim).fetchall()
        hold(ledger, rows, names)
        started = [{"queue": r["queue"], "now": now} for r in rows if r["queue"] in windows]
        db.many(conn, "flow_record_start", started)
        opens = [
            window_opens_at(starts + [now] * sum(1 for r in rows if r["queue"] == name), jobs, ms)
            for name, (jobs, ms, starts) in windows.items()
        ]
        return rows, min((at for at in opens if at is not None), default=None)

    def _batch_room(self, conn: Any, limited: Sequence[Any], want: int) -> dict[str, int]:
        """How many more jobs each limited batch (flow_lock_batches rows, locked) can start."""
        db = self.db
        if not limited:
            return {}
        names = {"names": db.array([r["name"] for r in limited])}
        running = {
            r["name"]: int(r["running"])
            for r in conn.execute(db.q["flow_batches_running"], names).fetchall()
        }
        return {
            r["name"]: max(0, min(want, r["concurrency"] - running.get(r["name"], 0)))
            for r in limited
        }

    def _take_lock(self, conn: Any, key: str) -> bool:
        """Whether this claim may start a job holding `key`: it has the key (PostgreSQL: an
        advisory lock until commit) and no running job holds it."""
        if not self.db.value(conn, "flow_try_lock", {"key": key}):
            return False
        keys = {"keys": self.db.array([key])}
        return conn.execute(self.db.q["flow_held_locks"], keys).fetchone() is None

    # -- the limits

    @operation()
    def queue_settings(self) -> dict[str, QueueSettings]:
        return {
            r["name"]: QueueSettings(
                paused=bool(r["paused"]),
                concurrency=r["concurrency"],
                rate_jobs=r["rate_jobs"],
                rate_ms=r["rate_ms"],
                running=int(r["running"]),
                memory=r["memory"],
                cpus=r["cpus"],
                max_procs=r["max_procs"],
            )
            for r in self.db.connection().execute(self.db.q["flow_settings"]).fetchall()
        }

    @operation()
    def set_limits(
        self,
        queue: str,
        concurrency: int | None,
        rate: tuple[int, int] | None,
        *,
        keep_concurrency: bool = False,
        keep_rate: bool = False,
    ) -> None:
        rate_jobs, rate_ms = rate or (None, None)
        with self.db.transaction() as conn:
            conn.execute(
                self.db.q["flow_set_limits"],
                {
                    "name": queue,
                    "concurrency": concurrency,
                    "rate_jobs": rate_jobs,
                    "rate_ms": rate_ms,
                    "keep_concurrency": keep_concurrency,
                    "keep_rate": keep_rate,
                },
            )
            if rate is None and not keep_rate:
                conn.execute(self.db.q["flow_forget_starts"], {"queue": queue})
            self.db.wake(conn)  # a raised limit may let waiting jobs start

    @operation()
    def set_job_defaults(self, queue: str, values: dict[str, Any]) -> None:
        params: dict[str, Any] = {"name": queue}
        for name in LIMITS:
            params[name] = values.get(name)
            params[f"keep_{name}"] = name not in values
        with self.db.transaction() as conn:
            conn.execute(self.db.q["set_job_defaults"], params)
            self.db.wake(conn)  # a runner that could not take a job may take it now

    @operation()
    def window_starts(self, queue: str, since_ms: int) -> list[int]:
        window = {"queue": queue, "since": since_ms}
        found = self.db.connection().execute(self.db.q["flow_window_starts"], window)
        return [int(r["started_at"]) for r in found]

    @operation()
    def lock_holder(self, key: str) -> str | None:
        value = self.db.value(self.db.connection(), "flow_lock_holder", {"key": key})
        return None if value is None else str(value)


def counted_names(limits: Sequence[Any], batches: Sequence[Any], enforces: int) -> list[str] | None:
    """What one statement can count and claim under (None: it cannot): the limited queues
    among `flow_lock_queues` rows (flow_claim_counted), if they have concurrency limits only
    and no limited batch has a job that may start; else the limited batches with such a job
    among `flow_lock_batches` rows (none: not read), each as BATCH_SLOT + its name
    (flow_claim_batches), for a runner that enforces every limit. Neither while a job with
    a lock may start."""
    live = [
        r
        for r in limits
        if not r["paused"] and (r["concurrency"] is not None or r["rate_jobs"] is not None)
    ]
    waiting = [BATCH_SLOT + r["name"] for r in batches if r["waiting"]]
    if any(r["locks_due"] for r in [*live, *batches]):
        return None
    if live:
        held = any(r["rate_jobs"] is not None or r["batches_due"] for r in live)
        return None if held or waiting else [r["name"] for r in live]
    return waiting if waiting and enforces == ALL_LIMITS else None


def split_counted(counted: Sequence[str]) -> tuple[list[str], list[str]]:
    """The queues and the batches of `counted_names`."""
    queues = [name for name in counted if not name.startswith(BATCH_SLOT)]
    batches = [name[len(BATCH_SLOT) :] for name in counted if name.startswith(BATCH_SLOT)]
    return queues, batches


def hold(ledger: Ledger, rows: Sequence[Any], limited: Sequence[str]) -> None:
    """Note the claims that take a limited queue's slot (else a limited batch's) or a lock,
    to know when settling them frees one."""
    for r in rows:
        queue = r["queue"] if r["queue"] in limited else None
        if queue is None and r["batch_limited"]:  # freeing the batch's slot wakes, as a queue's
            queue = BATCH_SLOT + r["batch"]
        if queue is not None or r["lock_key"] is not None:
            ledger.held[r["id"]] = (queue, r["lock_key"])
