"""Settling attempts: fenced by owner and token, retries decided by lifecycle, dependants
unblocked or cancelled, hooks fired; shared by the exchange, cancels and reaping."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from queuectl import lifecycle
from queuectl.models import CANCELLED, COMPLETED, DEAD, FINISHED_STATES, condition_met
from queuectl.store.dialect import Dialect
from queuectl.store.enqueue import BATCH_NOT_COMPLETED
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
        fenced = {r["id"]: r for r in rows}
        defaults = None
        for outcome in outcomes:
            # The retries an attempt may lead to are those its claim gave it (a queue's default).
            fence = ours.get(outcome.job_id)
            if fence is None:
                continue
            if outcome.fence is not None:
                ours[outcome.job_id] = replace(fence, max_retries=outcome.fence.max_retries)
            elif not fenced[outcome.job_id]["max_retries_set"]:
                # No claim says (a lost runner's attempt, a batch's job): the queue's default,
                # read as a claim reads it, else what the job was enqueued with.
                if defaults is None:
                    defaults = self.settings.queue_defaults(conn)
                default = defaults.get(fenced[outcome.job_id]["queue"])
                if default is not None and default.max_retries is not None:
                    ours[outcome.job_id] = replace(fence, max_retries=default.max_retries)
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
                    "cpu_ms": o.cpu_ms,
                    "max_rss_bytes": o.max_rss_bytes,
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
        ended = [
            (fenced[o.job_id]["batch"], o.job_id, fenced[o.job_id]["queue"])
            for o, s in decided
            if s.state in FINISHED_STATES and fenced[o.job_id]["batch"] is not None
        ]
        self.finish_batches(conn, ended + batch_ends(cascaded), now)
        with_dependants = {r["id"] for r in rows if r["has_dependants"]}
        completed = [
            o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants
        ]
        if (
            completed
            and conn.execute(db.q["unblock_dependants"], {"ids": db.array(completed)}).rowcount
        ):
            db.wake(conn)
        if completed:  # those waiting for its failure never run
            doomed = self.cascade(conn, completed, COMPLETED, now)
            if doomed and self.hooks.any(conn):
                self.hooks.fire_cancelled(conn, [], doomed, now)
            self.finish_batches(conn, batch_ends(doomed), now)
        return {outcome.job_id: settlement for outcome, settlement in decided}

    def finish_batches(self, conn: Any, ended: Sequence[tuple[str, str, str]], now: int) -> None:
        """Jobs of batches (batch, job id, queue) reached a final state in this transaction:
        each batch that thereby finished fires its hooks, once, and lets go of the jobs waiting
        for it (run if all of it completed, else cancelled, naming it; their dependants, and
        any batch those finish, in turn)."""
        db = self.db
        last = {batch: (job_id, queue) for batch, job_id, queue in ended}
        while last:
            params = {"names": db.array(sorted(last)), "now": now}
            finished = conn.execute(db.q["batch_finish"], params).fetchall()
            more: list[tuple[str, str, str]] = []
            for row in sorted(finished, key=lambda r: str(r["name"])):
                name, completed = row["name"], bool(row["completed"])
                job_id, queue = last[name]
                if self.hooks.any(conn):
                    self.hooks.fire_batch(conn, name, completed, job_id, queue, now)
                released = conn.execute(db.q["batch_release_deps"], {"name": name}).fetchall()
                waiting = [r["job_id"] for r in released]
                if not waiting:
                    continue
                if completed:
                    unblock = {"ids": db.array(waiting)}
                    if conn.execute(db.q["batch_unblock"], unblock).rowcount:
                        db.wake(conn)
                    continue
                doomed = {"doomed": db.json(dict.fromkeys(waiting, f"batch {name}")), "now": now}
                rows = conn.execute(
                    db.q["cancel_dependants"], {**doomed, "state": BATCH_NOT_COMPLETED}
                ).fetchall()
                cascaded = rows + self.cascade(conn, [r["id"] for r in rows], CANCELLED, now)
                if cascaded and self.hooks.any(conn):
                    self.hooks.fire_cancelled(conn, [], cascaded, now)
                more += batch_ends(cascaded)
            last = {batch: (job_id, queue) for batch, job_id, queue in more}

    def decide_ahead(self, outcomes: Sequence[lifecycle.Outcome], now: int) -> Decided | None:
        """How each outcome settles if its attempt is still ours, decided before anything is
        written, from the retry rules its claim returned; None when the plain path must settle
        them: an outcome without them, one that ends dead or cancelled (its dependants are
        cancelled), an abandoned attempt's (a lease to let go), or hooks on jobs to fire."""
        if not outcomes:
            return []  # nothing to decide, nor any configuration to read for it
        if any(o.fence is None or o.abandoned for o in outcomes):
            return None
        # Hooks on batches alone leave it be: the one-round-trip settlement leaves the job whose
        # end may finish its batch to the plain one (see pg_settle_fenced).
        if self.hooks.on_jobs(self.db.connection()):
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
        """Settle the dependants of jobs that ended `state`, and theirs in turn, a level of
        dependants a statement, through the jobs cancelled only: each job and edge is read
        once, however many of the roots share dependants (a bulk cancel's batch). A dependant
        whose condition the ending meets waits on one fewer (those waiting for a completion
        were let go by the caller); one whose condition it can no longer meet is cancelled,
        naming as its reason the root that reached it (the smallest, when several did at once)
        and the root's state; below a completed root, the cancelled job it depends on. The
        rows of the jobs cancelled (read whole: SQLite applies an UPDATE ... RETURNING as its
        rows are fetched)."""
        db = self.db
        reached = {job_id: job_id for job_id in roots}
        cascaded: list[Any] = []
        ended, named = state, state  # the state of this level's jobs; the one reasons name
        while reached:
            doomed: dict[str, str] = {}
            met: dict[str, int] = {}
            edges = conn.execute(db.q["dependants_of"], (db.array(list(reached)),))
            for edge in edges.fetchall():
                root, dependant = reached[edge["dep_id"]], edge["job_id"]
                verdict = condition_met(edge["cond"], ended)
                if verdict is False:
                    doomed[dependant] = min(root, doomed.get(dependant, root))
                elif verdict and ended != COMPLETED:
                    met[dependant] = met.get(dependant, 0) + 1
            if met and conn.execute(db.q["unblock_met"], {"jobs": db.json(met)}).rowcount:
                db.wake(conn)
            if not doomed:
                break
            params = {"doomed": db.json(doomed), "state": named, "now": now}
            rows = conn.execute(db.q["cancel_dependants"], params).fetchall()
            cascaded += rows
            if ended == COMPLETED:
                reached = {row["id"]: row["id"] for row in rows}
                named = CANCELLED
            else:
                reached = {row["id"]: doomed[row["id"]] for row in rows}
            ended = CANCELLED
        return cascaded


def batch_ends(rows: Sequence[Any]) -> list[tuple[str, str, str]]:
    """(batch, job id, queue) of the jobs of batches among these cancelled rows."""
    return [(r["batch"], r["id"], r["queue"]) for r in rows if r["batch"] is not None]


def finished_at_of(now: int) -> Callable[[lifecycle.Outcome], int]:
    """When an outcome's attempt ended, on the store's clock."""
    mono = time.monotonic()

    def finished_at(outcome: lifecycle.Outcome) -> int:
        if outcome.ended_mono is None:
            return now
        return now - max(0, round((mono - outcome.ended_mono) * 1000))

    return finished_at
