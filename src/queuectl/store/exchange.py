"""The runner's exchange: settle finished attempts and claim new jobs in one transaction, the
hot path of every runner; plainly, or in one round trip where the dialect offers it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from queuectl import lifecycle
from queuectl.models import ALL_LIMITS
from queuectl.store import rows
from queuectl.store.dialect import Dialect, Flow, operation
from queuectl.store.flowcontrol import FlowControl, counted_names, hold
from queuectl.store.records import Claim, Exchange, Ledger
from queuectl.store.settle import Decided, Settle, finished_at_of


class Exchanger(Flow):
    """finish_and_claim and the other writes a runner fences with its claim tokens."""

    def __init__(self, db: Dialect, settle: Settle, flow: FlowControl) -> None:
        super().__init__(db)
        self.settle, self.flow = settle, flow
        #: The ledger of callers that pass none: one runner per store (tests, benchmarks).
        self.ledger = Ledger()

    @operation(runner=True)
    def finish_and_claim(
        self,
        owner: str,
        outcomes: Sequence[lifecycle.Outcome],
        want: int,
        queues: Sequence[str] | None,
        lease_s: float,
        ledger: Ledger | None = None,
        enforces: int = ALL_LIMITS,
        tags: Sequence[str] = (),
    ) -> Exchange:
        # Replayed after a connection lost during COMMIT, outcomes already settled are fenced
        # out, and claims that did commit stay leased to `owner` until owned_jobs shows them.
        db, ledger = self.db, self.ledger if ledger is None else ledger
        now = db.now()
        params = {
            "owner": owner,
            "now": now,
            "lease_until": now + round(lease_s * 1000),
            "queues": None if queues is None else db.array(queues),
            # a runner of one queue claims from that queue's own index (claim_one_queue)
            "queue": queues[0] if queues is not None and len(queues) == 1 else None,
            "want": want,
            "enforces": enforces,
            "tags": db.array(tags),  # a job's required tags are among them
        }
        if db.at_once is not None:
            ahead = self.settle.decide_ahead(outcomes, now)
            if ahead is not None:
                return self._at_once(owner, outcomes, ahead, params, ledger)
        settled: dict[str, lifecycle.Settlement] = {}
        claims: list[Claim] = []
        next_due: int | None = None
        with db.transaction() as conn:
            if outcomes:
                settled = self.settle.settle(conn, owner, outcomes, now)
            if want > 0:
                conn.execute(db.q["promote_due"], (now,))
                claim = "claim" if params["queue"] is None else "claim_one_queue"
                found = conn.execute(db.q[claim], params).fetchall()
                claims, next_due = self._claim(conn, params, ledger, found)
            if _wakes(ledger, _freed(ledger, outcomes, settled), claims):
                db.wake(conn)
        return Exchange(settled, claims, next_due)

    def _at_once(
        self,
        owner: str,
        outcomes: Sequence[lifecycle.Outcome],
        decided: Decided,
        params: dict[str, Any],
        ledger: Ledger,
    ) -> Exchange:
        """The exchange in the dialect's one round trip: settlements decided ahead, and a claim
        that needs no answer before it is sent (under concurrency limits, it counts the queues
        the last flow claim found limited)."""
        db = self.db
        assert db.at_once is not None
        now, want = params["now"], params["want"]
        finished_at = finished_at_of(now)
        settle = [
            {
                **lifecycle.settle_params(o, s, owner, now, finished_at(o)),
                "error": s.last_error,  # finish_attempt's name for it
                "output": o.output,
                "dropped": None if o.output is None else o.output_dropped,
                "cpu_ms": o.cpu_ms,
                "max_rss_bytes": o.max_rss_bytes,
            }
            for o, s in decided
        ]
        counted = ledger.counted
        answer = db.at_once(settle, params, counted)
        settled = {o.job_id: s for o, s in decided if o.job_id in answer.settled}
        missed = [o for o, _ in decided if o.job_id not in answer.settled]
        if missed:
            # Fenced out, or a job that others wait on for another end than its completion:
            # the plain settlement tells them apart, and settles the second kind.
            with db.transaction() as conn:
                settled.update(self.settle.settle(conn, owner, missed, now))
        if answer.limits is None:  # the plain claim takes nothing where flow control may apply
            more = not answer.rows and answer.held_back
        else:
            assert counted is not None
            hold(ledger, answer.rows, counted)
            ledger.counted = counted_names(answer.limits, answer.batches or [], params["enforces"])
            more = ledger.counted != counted
        defaults = self.settle.settings.queue_defaults(db.connection()) if answer.rows else None
        claims = rows.claims(answer.rows, db.from_json, defaults)
        freed = _freed(ledger, outcomes, settled)
        next_due = answer.next_due
        if want > len(claims) and more:
            # Flow control may let more start (the same seam as the plain path), in a
            # transaction of its own after the settlements committed.
            with db.transaction() as conn:
                rest, next_due = self._claim(conn, {**params, "want": want - len(claims)}, ledger)
                claims += rest
                if _wakes(ledger, freed, claims):
                    db.wake(conn)
        elif _wakes(ledger, freed, claims):
            with db.transaction() as conn:
                db.wake(conn)
        return Exchange(settled, claims, next_due if len(claims) < want else None)

    def _claim(
        self, conn: Any, params: dict[str, Any], ledger: Ledger, found: Sequence[Any] = ()
    ) -> tuple[list[Claim], int | None]:
        """The claims of the rows `claim` took (none: claim under flow control instead), their
        attempts started; and, short of `want`, when the next delayed job falls due."""
        db = self.db
        now, owner = params["now"], params["owner"]
        window_next: int | None = None
        # `claim` took nothing: nothing is due, or flow control applies.
        if not found and db.flow_may_apply(conn, params):
            found, window_next = self.flow.claim(conn, params, ledger)
        started = [
            {
                "id": r["id"],
                "attempt": r["attempts"],
                "token": r["token"],
                "owner": owner,
                "now": now,
            }
            for r in found
        ]
        db.many(conn, "start_attempt", started)
        defaults = self.settle.settings.queue_defaults(conn) if found else None
        claims = rows.claims(found, db.from_json, defaults)
        next_due: int | None = None
        if len(claims) < params["want"]:
            next_due = db.value(conn, "next_due", (now,))
            if window_next is not None:
                next_due = window_next if next_due is None else min(next_due, window_next)
        return claims, next_due

    @operation()
    def release(self, owner: str, job_id: str, token: int, ledger: Ledger | None = None) -> bool:
        (self.ledger if ledger is None else ledger).held.pop(
            job_id, None
        )  # given back: the wake below tells the other runners
        db = self.db
        with db.transaction() as conn:
            changed = conn.execute(
                db.q["release_job"],
                {"now": db.now(), "id": job_id, "owner": owner, "token": token},
            ).rowcount
            if changed:
                conn.execute(db.q["drop_attempt"], {"id": job_id, "token": token})
                db.wake(conn)
        return bool(changed == 1)

    @operation(runner=True)
    def save_output(
        self, owner: str, job_id: str, token: int, data: bytes, dropped: int = 0
    ) -> bool:
        params = {"id": job_id, "owner": owner, "token": token, "data": data}
        with self.db.transaction() as conn:
            changed = conn.execute(self.db.q["save_live_output"], {**params, "dropped": dropped})
        return bool(changed.rowcount == 1)

    @operation()
    def save_progress(
        self, job_id: str, token: int, done: float, total: float, message: str | None
    ) -> bool:
        """Record an attempt's progress report; False if it is not the job's running one."""
        db = self.db
        params = {
            "id": job_id,
            "token": token,
            "done": done,
            "total": total,
            "message": message,
            "now": db.now(),
        }
        with db.transaction() as conn:
            changed = conn.execute(db.q["save_progress"], params)
        return bool(changed.rowcount == 1)

    @operation(runner=True)
    def owned_jobs(self, owner: str) -> dict[str, int]:
        found = self.db.connection().execute(self.db.q["owned_jobs"], {"owner": owner})
        return {r["id"]: r["attempts"] for r in found}


def _freed(
    ledger: Ledger,
    outcomes: Sequence[lifecycle.Outcome],
    settled: dict[str, lifecycle.Settlement],
) -> tuple[dict[str, int], set[str]]:
    """The limited queues' slots (queue: how many) and the locks that the settled jobs
    freed; they are no longer held."""
    slots: dict[str, int] = {}
    keys: set[str] = set()
    for outcome in outcomes:
        queue, key = ledger.held.pop(outcome.job_id, (None, None))
        if outcome.job_id not in settled:
            continue  # cancelled or recovered meanwhile: that change freed it, and woke
        if queue is not None:
            slots[queue] = slots.get(queue, 0) + 1
        if key is not None:
            keys.add(key)
    return slots, keys


def _wakes(ledger: Ledger, freed: tuple[dict[str, int], set[str]], claims: Sequence[Claim]) -> bool:
    """Whether to wake the other runners: the settlements `freed` a limited queue's slot or
    a lock that this exchange's own `claims` did not take again, and a runner held back by
    that limit would otherwise wait for its fallback poll. A slot taken again needs no
    wake, so a limited queue with a backlog sends none."""
    slots, keys = dict(freed[0]), set(freed[1])
    if not slots and not keys:
        return False
    for claim in claims:  # those that took a slot or a lock were just noted by hold()
        queue, key = ledger.held.get(claim.id, (None, None))
        if queue is not None and queue in slots:
            slots[queue] -= 1
        keys.discard(key)
    return bool(keys) or any(n > 0 for n in slots.values())
