"""Settling attempts: fenced by owner and token, retries decided by lifecycle, dependants
unblocked or cancelled, hooks fired; shared by the exchange, cancels and reaping."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from queuectl import lifecycle
from queuectl.models import CANCELLED, COMPLETED, DEAD
from queuectl.store.dialect import Dialect
from queuectl.store.hooks import Hooks
from queuectl.store.settings import Settings

Decided = list[tuple[lifecycle.Outcome, lifecycle.Settlement]]


class Settle:
    """Applies outcomes of attempts still ours, inside the caller's transaction."""

    def __init__(self, db: Dialect, settings: Settings, hooks: Hooks) -> None:
        self.db, self.settings, self.hooks = db, settings, hooks

    def settle(
        self, conn: Any, owner: str, outcomes: Sequence[lifecycle.Outcome], now: int
    ) -> dict[str, lifecycle.Settlement]:
        """Apply the outcomes whose attempt is still ours; how each was settled.

        A few statements whatever the number of outcomes: one locking read of the attempts
        still ours, the settlements and outputs in batches, one update of the dependants.
        """
        db = self.db
        ids = db.array([outcome.job_id for outcome in outcomes])
        rows = conn.execute(db.q["fenced_jobs"], (ids, owner)).fetchall()
        ours = {
            r["id"]: lifecycle.Fence(
                r["attempts"],
                r["token"],
                r["max_retries"],
                list(db.from_json(r["no_retry_exit_codes"])),
            )
            for r in rows
        }
        for outcome in outcomes:
            # The retries an attempt may lead to are those its claim gave it (a queue's default).
            fence = ours.get(outcome.job_id)
            if fence is not None and outcome.fence is not None:
                ours[outcome.job_id] = replace(fence, max_retries=outcome.fence.max_retries)
        finished_at = finished_at_of(now)
        config = self.settings.settle_config(conn)
        decided = lifecycle.settle_ours(
            [o for o in outcomes if not o.abandoned], ours, config, random.random, finished_at
        )
        self.let_go(conn, owner, [(o.job_id, o.token) for o in outcomes if o.abandoned])
        db.many(
            conn,
            "settle_job",
            [lifecycle.settle_params(o, s, owner, now, finished_at(o)) for o, s in decided],
        )
        db.many(
            conn,
            "finish_attempt",
            [
                {
                    "id": o.job_id,
                    "token": o.token,
                    "finished_at": finished_at(o),
                    "exit_code": o.exit_code,
                    "error": s.last_error,
                    "duration_ms": o.duration_ms,
                    "output": o.output,
                    "dropped": None if o.output is None else o.output_dropped,
                }
                for o, s in decided
            ],
        )
        cascaded: list[Any] = []
        for outcome, settlement in decided:
            if settlement.state in (DEAD, CANCELLED):
                cascaded += self.cascade(conn, [outcome.job_id], settlement.state, now)
        if decided and self.hooks.any(conn):
            self.hooks.fire_settled(conn, decided, cascaded, now)
        with_dependants = {r["id"] for r in rows if r["has_dependants"]}
        completed = [
            o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants
        ]
        if (
            completed
            and conn.execute(db.q["unblock_dependants"], {"ids": db.array(completed)}).rowcount
        ):
            db.wake(conn)
        return {outcome.job_id: settlement for outcome, settlement in decided}

    def decide_ahead(self, outcomes: Sequence[lifecycle.Outcome], now: int) -> Decided | None:
        """How each outcome settles if its attempt is still ours, decided before anything is
        written, from the retry rules its claim returned; None when the plain path must settle
        them: an outcome without them, one that ends dead or cancelled (its dependants are
        cancelled), an abandoned attempt's (a lease to let go), or hooks to fire."""
        if not outcomes:
            return []  # nothing to decide, nor any configuration to read for it
        if any(o.fence is None or o.abandoned for o in outcomes):
            return None
        if self.hooks.any(self.db.connection()):
            return None
        ours = {o.job_id: o.fence for o in outcomes if o.fence is not None}
        config = self.settings.settle_config(self.db.connection())
        decided = lifecycle.settle_ours(outcomes, ours, config, random.random, finished_at_of(now))
        if len(decided) != len(outcomes) or any(s.state in (DEAD, CANCELLED) for _, s in decided):
            return None
        return sorted(decided, key=lambda d: d[0].job_id)  # one lock order for every settler

    def let_go(self, conn: Any, owner: str, attempts: Sequence[tuple[str, int]]) -> None:
        """The processes of these cancelled attempts (job id, token) under `owner` are gone:
        their leases, holding a lock, a queue's slot and their job, are let go."""
        freed = 0
        for job_id, token in attempts:
            params = {"id": job_id, "owner": owner, "token": token}
            freed += conn.execute(self.db.q["let_go"], params).rowcount
        if freed:
            self.db.wake(conn)

    def cascade(self, conn: Any, roots: Iterable[str], state: str, now: int) -> list[Any]:
        """Cancel the dependants of jobs that ended `state` (dead or cancelled), and theirs in
        turn, a level of dependants a statement, through the jobs cancelled only: each job and
        edge is read once, however many of the roots share dependants (a bulk cancel's batch).
        Each dependant names as its reason the root that reached it (the smallest, when several
        did at once). The rows of the jobs cancelled (read whole: SQLite applies an UPDATE ...
        RETURNING as its rows are fetched)."""
        db = self.db
        reached = {job_id: job_id for job_id in roots}
        cascaded: list[Any] = []
        while reached:
            doomed: dict[str, str] = {}
            edges = conn.execute(db.q["dependants_of"], (db.array(list(reached)),))
            for edge in edges.fetchall():
                root, dependant = reached[edge["dep_id"]], edge["job_id"]
                doomed[dependant] = min(root, doomed.get(dependant, root))
            if not doomed:
                break
            params = {"doomed": db.json(doomed), "state": state, "now": now}
            rows = conn.execute(db.q["cancel_dependants"], params).fetchall()
            cascaded += rows
            reached = {row["id"]: doomed[row["id"]] for row in rows}
        return cascaded


def finished_at_of(now: int) -> Callable[[lifecycle.Outcome], int]:
    """When an outcome's attempt ended, on the store's clock."""
    mono = time.monotonic()

    def finished_at(outcome: lifecycle.Outcome) -> int:
        if outcome.ended_mono is None:
            return now
        return now - max(0, round((mono - outcome.ended_mono) * 1000))

    return finished_at
