"""The planted bugs: each a textual change of one source file, with the tests that must catch it.

`old` must occur exactly once in its file (`stale` reports those that do not, and
tests/mutation/test_mutants.py fails on them): when the code changes under an entry, the entry
is fixed, never silently skipped. `tests` are pytest arguments (files, node ids, -k), chosen so
that each mutant runs in seconds to a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "queuectl"

CONTRACT = "tests/store/test_store_contract.py"
CLAIMS = "tests/store/test_claim_tokens.py"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str  # relative to src/queuectl
    old: str
    new: str
    description: str
    tests: tuple[str, ...]


def _contract(*names: str) -> tuple[str, ...]:
    """Tests of the store contract (both stores) whose names contain one of `names`."""
    return (CONTRACT, "-k", " or ".join(names))


MUTANTS: list[Mutant] = [
    # -- the SQLite store's SQL
    Mutant(
        "sqlite-unblock-by-one",
        "store/sql/sqlite/settle.sql",
        "SET waiting_on = waiting_on - (\n",
        "SET waiting_on = waiting_on - 1 + 0 * (\n",
        "dependants wait on one fewer, however many of their dependencies completed at once",
        _contract("dependencies_that_complete_together"),
    ),
    Mutant(
        "sqlite-claim-lowest-priority-first",
        "store/sql/sqlite/exchange.sql",
        "json_each(:queues)))\n      AND {sqlite_claim_candidate}\n    ORDER BY priority DESC,",
        "json_each(:queues)))\n      AND {sqlite_claim_candidate}\n    ORDER BY priority,",
        "the plain claim takes the lowest priority first",
        _contract("claim_order", "claim_one_at_a_time"),
    ),
    Mutant(
        "sqlite-claim-one-queue-lowest-priority-first",
        "store/sql/sqlite/exchange.sql",
        "WHERE queue = :queue AND {sqlite_claim_candidate}\n    ORDER BY priority DESC,",
        "WHERE queue = :queue AND {sqlite_claim_candidate}\n    ORDER BY priority,",
        "a runner of one queue takes its lowest priority first",
        _contract("some_queues"),
    ),
    Mutant(
        "sqlite-fence-ignores-owner",
        "store/sql/sqlite/settle.sql",
        "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'processing' AND lease_owner = ?",
        "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'processing' AND ? IS NOT NULL",
        "a settlement is fenced by the job's state only, not by the runner holding it",
        _contract("fenced_out", "late_writer", "cancelled_job_changes_nothing"),
    ),
    Mutant(
        "sqlite-expired-lease-inverted",
        "store/sql/sqlite/maintenance.sql",
        "WHERE state = 'processing' AND lease_expires_at < :now\n"
        "  AND lease_owner NOT IN (SELECT value FROM json_each(:exclude))",
        "WHERE state = 'processing' AND lease_expires_at > :now\n"
        "  AND lease_owner NOT IN (SELECT value FROM json_each(:exclude))",
        "the reaper takes the leases that have not expired",
        _contract("reaped_as_worker_lost", "heartbeat_renews", "worker_lost_on_the_last"),
    ),
    Mutant(
        "sqlite-renew-no-leases",
        "store/sql/sqlite/maintenance.sql",
        "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'processing'",
        "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'pending'",
        "a heartbeat renews the runner but not its leases",
        _contract("heartbeat_renews"),
    ),
    Mutant(
        "sqlite-release-ignores-token",
        "store/sql/sqlite/exchange.sql",
        "    scheduled = 0, updated_at = :now\n"
        "WHERE id = :id AND state = 'processing' AND lease_owner = :owner AND token = :token",
        "    scheduled = 0, updated_at = :now\n"
        "WHERE id = :id AND state = 'processing' AND lease_owner = :owner",
        "a stopping runner gives back a later claim of the job in place of its stale one",
        (CLAIMS, "-k", "stale_result"),
    ),
    Mutant(
        "sqlite-save-output-ignores-token",
        "store/sql/sqlite/exchange.sql",
        "WHERE job_id = :id AND token = :token AND runner = :owner",
        "WHERE job_id = :id AND runner = :owner",
        "a running attempt's output also overwrites that of the job's cancelled attempts",
        (CLAIMS, "-k", "own_output or own_history_row or stale_result"),
    ),
    Mutant(
        "sqlite-let-go-never",
        "store/sql/sqlite/settle.sql",
        "WHERE id = :id AND lease_owner = :owner AND token = :token AND state <> 'processing'",
        "WHERE id = :id AND lease_owner = :owner AND token = :token AND state = 'processing'",
        "a cancelled attempt whose processes are gone keeps its lease: its lock and slot forever",
        (CLAIMS, "-k", "until_it_is_gone or waits_for_its_attempt"),
    ),
    Mutant(
        "sqlite-dying-of-dead-runner-kept",
        "store/sql/sqlite/maintenance.sql",
        "  AND (lease_owner IN (SELECT value FROM json_each(:owners))\n",
        "  AND (0\n",
        "a dead runner's cancelled attempts hold their lock and slot until their lease runs out",
        (CLAIMS, "-k", "dead_runners_cancelled"),
    ),
    Mutant(
        "sqlite-requeue-beside-dying",
        "store/sql/sqlite/actions.sql",
        "waiting_on = again.value + (lease_owner IS NOT NULL)",
        "waiting_on = again.value + 0",
        "a cancelled job run again starts while its cancelled attempt's processes still live",
        (CLAIMS, "tests/runner/test_cancel_requeue.py", "-k", "requeued"),
    ),
    Mutant(
        "sqlite-bulk-past-its-start",
        "store/sql/sqlite/actions.sql",
        "WHERE state = :state AND seq > :after AND seq <= :upto\n",
        "WHERE state = :state AND seq > :after\n",
        "a bulk cancel also cancels the jobs enqueued while it runs",
        ("tests/store/test_actions.py", "-k", "between_the_batches"),
    ),
    Mutant(
        "sqlite-counter-lost-as-failed",
        "store/migrations/sqlite/0012_counters.sql",
        "                WHEN new.last_error = 'worker lost' THEN 'lost'\n",
        "",
        "an attempt whose runner was lost is counted as failed",
        ("tests/store/test_counters.py", "tests/api/test_metrics.py"),
    ),
    Mutant(
        "sqlite-promote-a-second-late",
        "store/sql/sqlite/exchange.sql",
        "WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at <= ?",
        "WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at + 1000 <= ?",
        "a delayed job becomes due a second after its run_at",
        _contract("skips_jobs_not_yet_due", "backs_off_then_dies"),
    ),
    Mutant(
        "sqlite-release-keeps-the-attempt",
        "store/sql/sqlite/exchange.sql",
        "SET state = 'pending', attempts = attempts - 1, lease_owner = NULL",
        "SET state = 'pending', attempts = attempts, lease_owner = NULL",
        "a job given back by a stopping runner uses up an attempt",
        _contract("release_gives_the_attempt_back"),
    ),
    Mutant(
        "sqlite-concurrency-one-over",
        "store/sql/sqlite/flowcontrol.sql",
        "            :want, limits.concurrency - (",
        "            :want, limits.concurrency + 1 - (",
        "a concurrency-limited queue runs one job more than its limit",
        ("tests/store/test_flowcontrol.py", "-k", "concurrency_runs_exactly or lost_lease_frees"),
    ),
    Mutant(
        "sqlite-lock-held-by-pending",
        "store/sql/sqlite/flowcontrol.sql",
        "WHERE lock_key IN (SELECT value FROM json_each(:keys)) AND lease_owner IS NOT NULL",
        "WHERE lock_key IN (SELECT value FROM json_each(:keys)) AND lease_owner IS NULL",
        "a lock counts as held by a job without a lease, not a running one (two holders at once)",
        ("tests/store/test_flowcontrol.py", "-k", "locks or lock_inside"),
    ),
    Mutant(
        "sqlite-rate-prunes-the-window",
        "store/sql/sqlite/flowcontrol.sql",
        "DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :since",
        "DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :since + 60000",
        "the rate limit forgets starts still inside its window",
        ("tests/store/test_flowcontrol.py", "-k", "rate"),
    ),
    Mutant(
        "sqlite-expire-any-state",
        "store/sql/sqlite/actions.sql",
        "      AND +state IN (SELECT value FROM json_each(:states)) AND lease_owner IS NULL\n",
        "      AND lease_owner IS NULL\n",
        "retention deletes jobs of any state that ever finished (failed jobs awaiting a retry)",
        ("tests/store/test_maintenance.py", "tests/store/test_history.py", "-k", "expire"),
    ),
    Mutant(
        "sqlite-housekeeping-never-expired",
        "store/sql/sqlite/maintenance.sql",
        "            WHERE state = 'processing' AND lease_expires_at < :now\n"
        "              AND lease_owner <> :owner)\n    OR EXISTS",
        "            WHERE state = 'processing' AND lease_expires_at < 0\n"
        "              AND lease_owner <> :owner)\n    OR EXISTS",
        "a runner never sees another's expired lease: its job waits until that runner is dead",
        _contract("housekeeping_reads"),
    ),
    Mutant(
        "sqlite-requeue-waits-on-nothing",
        "store/sql/sqlite/actions.sql",
        "waiting_on = again.value + (lease_owner IS NOT NULL)",
        "waiting_on = 0 + (lease_owner IS NOT NULL)",
        "a job run again starts before its dependencies, pending again, complete",
        ("tests/store/test_hostile_history.py", "-k", "requeue"),
    ),
    # -- the PostgreSQL store's SQL
    Mutant(
        "pg-settle-unblocks-on-failure",
        "store/sql/postgres/exchange.sql",
        "      AND EXISTS (SELECT 1 FROM settled WHERE state = 'completed')",
        "      AND EXISTS (SELECT 1 FROM settled WHERE state IN ('completed', 'failed'))",
        "a dependency that fails and will retry unblocks its dependants",
        _contract("failed_dependency"),
    ),
    Mutant(
        "pg-claim-lowest-priority-first",
        "store/sql/postgres/exchange.sql",
        "ANY(%(queues)s::text[]))\n      AND {pg_claim_candidate}\n    ORDER BY priority DESC,",
        "ANY(%(queues)s::text[]))\n      AND {pg_claim_candidate}\n    ORDER BY priority,",
        "the plain claim takes the lowest priority first",
        _contract("claim_order", "claim_one_at_a_time"),
    ),
    Mutant(
        "pg-fence-ignores-owner",
        "store/sql/postgres/settle.sql",
        "WHERE id = ANY(%s) AND state = 'processing' AND lease_owner = %s",
        "WHERE id = ANY(%s) AND state = 'processing' AND %s IS NOT NULL",
        "a settlement read is fenced by the job's state only, not by the runner holding it",
        _contract("fenced_out", "late_writer", "cancelled_job_changes_nothing", "cancel"),
    ),
    Mutant(
        "pg-expired-lease-inverted",
        "store/sql/postgres/maintenance.sql",
        "WHERE state = 'processing' AND lease_expires_at < %(now)s::bigint\n"
        "  AND lease_owner <> ALL(%(exclude)s::text[])",
        "WHERE state = 'processing' AND lease_expires_at > %(now)s::bigint\n"
        "  AND lease_owner <> ALL(%(exclude)s::text[])",
        "the reaper takes the leases that have not expired",
        _contract("reaped_as_worker_lost", "heartbeat_renews", "worker_lost_on_the_last"),
    ),
    Mutant(
        "pg-unblock-by-one",
        "store/sql/postgres/settle.sql",
        "UPDATE jobs SET waiting_on = jobs.waiting_on - done.n",
        "UPDATE jobs SET waiting_on = jobs.waiting_on - 1",
        "the general settlement path: dependants wait on one fewer however many completed",
        _contract("dependencies_that_complete_together"),
    ),
    Mutant(
        "pg-lock-held-by-pending",
        "store/sql/postgres/flowcontrol.sql",
        "WHERE lock_key = ANY(%(keys)s::text[]) AND lease_owner IS NOT NULL",
        "WHERE lock_key = ANY(%(keys)s::text[]) AND lease_owner IS NULL",
        "a lock counts as held by a job without a lease, not a running one (two holders at once)",
        ("tests/store/test_flowcontrol.py", "-k", "locks or lock_inside"),
    ),
    Mutant(
        "pg-settle-ignores-token",
        "store/sql/postgres/settle.sql",
        "WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s\n"
        "  AND token = %(token)s::bigint\n\n-- name: let_go",
        "WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s\n\n-- name: let_go",
        "PostgreSQL's one-round-trip settlement takes a stale claim's result for the later one",
        (CLAIMS, "-k", "postgres"),
    ),
    Mutant(
        "pg-release-ignores-token",
        "store/sql/postgres/exchange.sql",
        "    scheduled = false, updated_at = %(now)s::bigint\n"
        "WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s\n"
        "  AND token = %(token)s::bigint",
        "    scheduled = false, updated_at = %(now)s::bigint\n"
        "WHERE id = %(id)s AND state = 'processing' AND lease_owner = %(owner)s",
        "a stopping runner gives back a later claim of the job in place of its stale one",
        (CLAIMS, "-k", "stale_result"),
    ),
    Mutant(
        "pg-save-output-ignores-token",
        "store/sql/postgres/exchange.sql",
        "WHERE job_id = %(id)s AND token = %(token)s::bigint AND runner = %(owner)s::text",
        "WHERE job_id = %(id)s AND runner = %(owner)s::text",
        "a running attempt's output also overwrites that of the job's cancelled attempts",
        (CLAIMS, "-k", "own_output or own_history_row or stale_result"),
    ),
    Mutant(
        "pg-let-go-keeps-waiting",
        "store/sql/postgres/settle.sql",
        "    waiting_on = waiting_on - CASE WHEN state IN ('pending', 'failed') THEN 1 ELSE 0 END",
        "    waiting_on = waiting_on",
        "a job run again while its cancelled attempt died waits forever once that attempt is gone",
        (CLAIMS, "-k", "waits_for_its_attempt or let_go"),
    ),
    Mutant(
        "pg-dying-lease-never-expires",
        "store/sql/postgres/maintenance.sql",
        "       OR lease_expires_at < %(now)s::bigint AND lease_owner <> ALL(%(exclude)s::text[]))\n"
        "FOR UPDATE SKIP LOCKED",
        "       OR lease_expires_at < 0 AND lease_owner <> ALL(%(exclude)s::text[]))\n"
        "FOR UPDATE SKIP LOCKED",
        "a cancelled attempt of a frozen runner of another host holds its lock and slot forever",
        (CLAIMS, "-k", "dead_runners_cancelled"),
    ),
    Mutant(
        "pg-requeue-beside-dying",
        "store/sql/postgres/actions.sql",
        "                 + CASE WHEN lease_owner IS NULL THEN 0 ELSE 1 END\n",
        "",
        "a cancelled job run again starts while its cancelled attempt's processes still live",
        (CLAIMS, "tests/runner/test_cancel_requeue.py", "-k", "requeued"),
    ),
    Mutant(
        "pg-counter-waiting-cancel-uncounted",
        "store/migrations/postgres/0012_counters.sql",
        "      AND (was = 'processing' OR state IN ('completed', 'dead', 'cancelled'))",
        "      AND (was = 'processing' OR state IN ('completed', 'dead'))",
        "a job cancelled while it waited is not counted as finished",
        (
            "tests/store/test_counters.py",
            "tests/api/test_metrics.py",
            "-k",
            "postgres or not store",
        ),
    ),
    # -- the dialects
    Mutant(
        "sqlite-no-wakeup",
        "store/sqlite.py",
        "        if self._local.wake:\n            self._wakeup.notify()",
        "        if False:\n            self._wakeup.notify()",
        "SQLite runners are never woken: an enqueued job waits for the poll",
        ("tests/runner/test_flow.py", "-k", "freed_lock_wakes"),
    ),
    Mutant(
        "sqlite-deferred-writes",
        "store/sqlite.py",
        'conn.execute("BEGIN IMMEDIATE")',
        'conn.execute("BEGIN")',
        "SQLite transactions take the write lock only at their first write (read, then lose it)",
        (
            "tests/store/test_open.py::"
            "test_a_write_waits_for_another_process_holding_the_write_lock",
            "tests/store/test_concurrency.py",
        ),
    ),
    Mutant(
        "pg-fenced-out-reported-settled",
        "store/postgres.py",
        "for job_id, cursor in settling if cursor.fetchone() is not None}",
        "for job_id, cursor in settling if cursor.fetchone() is not None or True}",
        "PostgreSQL's one round trip reports a fenced-out outcome as settled",
        _contract("fenced_out", "late_writer", "cancelled_job_changes_nothing"),
    ),
    Mutant(
        "pg-no-wakeup",
        "store/postgres.py",
        '        conn.execute(self.q["pg_notify"])',
        "        pass",
        "PostgreSQL runners are never woken: an enqueued job waits for the poll",
        ("tests/runner/test_flow.py", "-k", "freed_lock_wakes"),
    ),
    # -- the store core
    Mutant(
        "core-insert-after-cancelled-waits",
        "store/enqueue.py",
        "                elif not met and cancelled_by is None:\n",
        "                elif not met and cancelled_by is None and states[dep] != CANCELLED:\n",
        "a job enqueued after a cancelled dependency is stored pending and waits forever",
        _contract("cancelled_dependency"),
    ),
    Mutant(
        "core-insert-waits-on-nothing",
        "store/enqueue.py",
        "                if met is None:\n                    waiting_on += 1",
        "                if met is None and states[dep] == DEAD:\n                    waiting_on += 1",
        "a job enqueued after a pending dependency starts at once",
        _contract("depends_on_waits_for_completion"),
    ),
    Mutant(
        "core-dead-does-not-cascade",
        "store/settle.py",
        "            if settlement.state in (DEAD, CANCELLED):\n                cascaded +=",
        "            if settlement.state == CANCELLED:\n                cascaded +=",
        "a dependency that ends dead leaves its dependants waiting forever",
        _contract("dead_dependency_cancels"),
    ),
    Mutant(
        "core-unblock-on-failure",
        "store/settle.py",
        "o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants",
        "o.job_id for o, s in decided if s.state != DEAD and o.job_id in with_dependants",
        "a dependency that fails and will retry unblocks its dependants",
        _contract("failed_dependency"),
    ),
    Mutant(
        "core-requeue-after-cancelled-dependency",
        "store/actions.py",
        "            elif met is False:\n                raise WrongStateError(",
        "            elif met is False and state != CANCELLED:\n                raise WrongStateError(",
        "a job requeued while its dependency is cancelled is pending and waits forever",
        ("tests/store/test_hostile_history.py", "-k", "requeue"),
    ),
    Mutant(
        "core-decide-ahead-through-dead",
        "store/settle.py",
        "if len(decided) != len(outcomes) or any(s.state in (DEAD, CANCELLED) for _, s in decided):",
        "if len(decided) != len(outcomes):",
        "PostgreSQL's one-round-trip settlement takes a dead outcome: no cascade to dependants",
        _contract("dead_dependency_cancels"),
    ),
    Mutant(
        "core-decide-ahead-with-hooks",
        "store/settle.py",
        "        if self.hooks.on_jobs(self.db.connection()):\n            return None",
        "        if False:\n            return None",
        "PostgreSQL's one-round-trip settlement skips the hooks on completion",
        ("tests/store/test_hooks.py", "-k", "claims_rules"),
    ),
    Mutant(
        "core-reap-own-leases",
        "store/maintenance.py",
        'expired = {"now": now, "exclude": self.db.array(exclude)}',
        'expired = {"now": now, "exclude": self.db.array([])}',
        "a runner reaps its own expired leases (a clock step recovers its running jobs)",
        _contract("own_expired_leases"),
    ),
    Mutant(
        "core-heartbeat-lets-dying-expire",
        "store/maintenance.py",
        '            conn.execute(self.db.q["renew_dying"], (until, owner))',
        "            pass",
        "a live runner's cancelled attempt loses its lease while it is killed: its lock is freed",
        (CLAIMS, "-k", "dead_runners_cancelled or renews"),
    ),
    Mutant(
        "core-cascade-one-level",
        "store/settle.py",
        '            reached = {row["id"]: doomed[row["id"]] for row in rows}',
        "            reached = {}",
        "a dead dependency cancels its dependants but not theirs (they wait forever)",
        (CONTRACT, "tests/store/test_actions.py", "-k", "dead_dependency_cancels or cascade"),
    ),
    Mutant(
        "core-bulk-cursor-skips",
        "store/actions.py",
        'return [row["id"] for row in rows], int(rows[-1]["seq"]) if rows else step.after',
        'return [row["id"] for row in rows], int(rows[-1]["seq"]) + 1 if rows else step.after',
        "each batch of a bulk change skips the job after the last one it read",
        ("tests/store/test_actions.py", "-k", "batch"),
    ),
    Mutant(
        "lifecycle-fence-ignores-token",
        "lifecycle.py",
        "if fence is not None and fence.token == outcome.token:",
        "if fence is not None:",
        "a late result of an earlier claim of the same attempt number settles the later claim",
        (CLAIMS, "-k", "stale_result or own_history_row"),
    ),
    Mutant(
        "queries-every-migration-changes-claims",
        "store/queries.py",
        "if v > after and sql.startswith(CHANGES_CLAIMS)]",
        "if v > after]",
        "an upgrade that changes no claim waits for every older runner to stop",
        ("tests/store/test_upgrade_runners.py",),
    ),
    # -- the library
    Mutant(
        "queue-retry-all-cancelled",
        "queue.py",
        "return self._store.requeue(None, [DEAD], name, progress=progress)",
        "return self._store.requeue(None, [DEAD, CANCELLED], name, progress=progress)",
        "dlq retry --all also runs the cancelled jobs again",
        _contract("retry_all"),
    ),
    # -- the runner
    Mutant(
        "runner-slots-ignore-running",
        "runner/supervisor.py",
        "free = self.slots.free",
        "free = self.slots.count",
        "a runner claims a full batch whatever it runs already (more jobs than workers)",
        ("tests/runner/test_commands.py", "-k", "at_most_its_workers"),
    ),
    Mutant(
        "runner-timeout-never-fires",
        "runner/supervisor.py",
        "elif attempt.deadline is not None and now >= attempt.deadline:",
        "elif attempt.deadline is not None and now >= attempt.deadline + 3600:",
        "a job past its timeout runs on",
        ("tests/runner/test_retry.py", "-k", "timeout"),
    ),
    Mutant(
        "runner-no-kill-after-term",
        "runner/supervisor.py",
        "                if now >= attempt.kill_at:\n"
        "                    executor.signal_group(attempt, signal.SIGKILL)",
        "                if now >= attempt.kill_at:\n"
        "                    executor.signal_group(attempt, signal.SIGTERM)",
        "a job that ignores SIGTERM is never SIGKILLed (timeout, cancel, grace)",
        ("tests/runner/test_retry.py", "-k", "ignores_sigterm"),
    ),
    Mutant(
        "runner-cancel-not-killed",
        "runner/supervisor.py",
        "                attempt.abandoned = True\n                executor.terminate(attempt, now, None)",
        "                attempt.abandoned = True",
        "a cancelled job's process runs on",
        ("tests/runner/test_output.py", "-k", "cancel_kills"),
    ),
    Mutant(
        "runner-grace-never-ends",
        "runner/supervisor.py",
        "if self.stop_at is not None and now >= self.stop_at and not attempt.released:",
        "if self.stop_at is not None and now >= self.stop_at + 3600 and not attempt.released:",
        "a graceful stop past its grace waits for the running jobs anyway",
        ("tests/runner/test_stop.py", "-k", "grace"),
    ),
    Mutant(
        "runner-stopped-job-not-given-back",
        "runner/supervisor.py",
        "            self.unreleased.append((claim.id, claim.token))",
        "            pass",
        "a job killed by a stop is left processing, not given back",
        ("tests/runner/test_stop.py", "-k", "grace or second_sigint"),
    ),
    Mutant(
        "runner-output-not-trimmed",
        "runner/supervisor.py",
        'output = executor.tail(attempt, int(self.config["output_limit"]))',
        "output = executor.tail(attempt, 1 << 40)",
        "a job's whole output is written to the store, not its last output_limit bytes",
        ("tests/runner/test_output.py", "-k", "capped"),
    ),
    Mutant(
        "runner-live-output-never-copied",
        "runner/maintenance.py",
        "            if size != attempt.synced_size:",
        "            if size != size:",
        "a running job's output reaches the store only when it ends (logs --follow sees nothing)",
        ("tests/runner/test_output.py", "-k", "follow"),
    ),
    Mutant(
        "executor-default-timeout-ignored",
        "runner/executor.py",
        "timeout_s = (default_timeout_s or None) if claim.timeout is None",
        "timeout_s = None if claim.timeout is None",
        "the configured job_timeout does not apply to a job without its own",
        ("tests/runner/test_retry.py", "-k", "job_timeout"),
    ),
    Mutant(
        "executor-signal-exit-code",
        "runner/executor.py",
        "self.exit_code = code if code >= 0 else 128 - code",
        "self.exit_code = code",
        "a job killed by signal N reports a negative exit code, not 128 + N",
        ("tests/runner/test_commands.py", "-k", "killed_by_a_signal"),
    ),
    Mutant(
        "executor-tail-keeps-the-head",
        "runner/executor.py",
        "    start_at = max(0, size - limit)\n",
        "    start_at = 0\n",
        "the output kept is the first bytes, not the last",
        ("tests/runner/test_output.py", "-k", "capped"),
    ),
    Mutant(
        "executor-kill-an-hour-after-term",
        "runner/executor.py",
        "        attempt.kill_at = now + KILL_GRACE_S",
        "        attempt.kill_at = now + 3600 * KILL_GRACE_S",
        "the SIGKILL that follows a SIGTERM comes an hour later",
        ("tests/runner/test_retry.py", "-k", "ignores_sigterm"),
    ),
    Mutant(
        "runner-reaps-live-local",
        "runner/recovery.py",
        "spared = [*mine, *live_local(list(runners), now_ms, lease_s)]",
        "spared = [*mine]",
        "a runner recovers the expired leases of a live runner of its host (its jobs run twice)",
        ("tests/reliability/test_siblings.py", "-k", "does_not_reap or wall_clock_step"),
    ),
    Mutant(
        "runner-heartbeat-once-a-lease",
        "runner/maintenance.py",
        'return float(self.runner.config["lease_seconds"]) / 3',
        'return float(self.runner.config["lease_seconds"])',
        "a runner renews its leases only as they run out: one late beat loses its jobs",
        ("tests/reliability/test_siblings.py", "-k", "renews_its_lease"),
    ),
    Mutant(
        "runner-grace-0-waits",
        "runner/supervisor.py",
        "        if self.grace_s is not None:\n            self.stop_at = now + self.grace_s",
        "        if self.grace_s:\n            self.stop_at = now + self.grace_s",
        "a stop with --grace 0 waits for the running jobs instead of killing them at once",
        ("tests/runner/test_stop.py", "-k", "grace_0"),
    ),
    Mutant(
        "recovery-leftovers-not-killed",
        "runner/recovery.py",
        "    killed = kill_leftovers(store, list(runners), now_ms, lease_s)",
        "    killed = 0",
        "a recovery frees a dead runner's job while its processes still run",
        ("tests/reliability/test_recover.py", "-k", "sqlite"),
    ),
    Mutant(
        "queue-readers-recover",
        "admin.py",
        "        if not (runners := self._store.runners()):",
        "        from queuectl.runner.recovery import recover_now\n\n"
        "        recover_now(self._store)\n"
        "        if not (runners := self._store.runners()):",
        "readers (status, worker list, the API, /metrics) kill leftovers and recover jobs",
        ("tests/reliability/test_recover.py", "-k", "sqlite"),
    ),
    Mutant(
        "liveness-no-live-local",
        "runner/liveness.py",
        "    return [r.id for r in runners if is_local(r) and not _gone_or_stopped(r, now_ms, lease_s)]",
        "    return []",
        "a runner recovers the expired leases of a live runner of its host (its jobs run twice)",
        ("tests/reliability/test_siblings.py", "-k", "does_not_reap or wall_clock_step"),
    ),
    Mutant(
        "liveness-local-pid-reuse",
        "runner/liveness.py",
        "    return now_started is None or now_started == pid_started",
        "    return True",
        "a runner whose pid now belongs to another process counts as alive",
        ("tests/runner/test_survivors.py", "-k", "pid_was_reused"),
    ),
    Mutant(
        "liveness-remote-never-dead",
        "runner/liveness.py",
        "        return now_ms - runner.heartbeat_at_ms > STALE_LEASES * lease_s * 1000",
        "        return False",
        "a runner of another host that went silent is never declared dead",
        ("tests/runner/test_survivors.py", "-k", "silent_runner_of_another_host"),
    ),
    Mutant(
        "liveness-dead-local-alive",
        "runner/liveness.py",
        "    if not is_alive(runner.pid, runner.pid_started):\n        return True",
        "    if not is_alive(runner.pid, runner.pid_started):\n        return False",
        "a runner of this host whose process is gone is not dead: its jobs wait for the lease",
        ("tests/runner/test_crash.py", "-k", "recognised_at_once"),
    ),
    Mutant(
        "tree-leftovers-not-killed",
        "runner/tree.py",
        "if not name.isdigit() or (marks := _marks(int(name))) is None:",
        "if not name.isdigit() or (marks := _marks(int(name))) is None or True:",
        "a dead runner's job processes are not found, so not killed before its slot is freed",
        ("tests/reliability/test_leftovers.py",),
    ),
    Mutant(
        "tree-cgroup-not-killed",
        "runner/tree.py",
        "        self.killed.add(path)\n        with contextlib.suppress(OSError):\n"
        '            limits.write_file(f"{path}/cgroup.kill", "1")',
        "        self.killed.add(path)\n        with contextlib.suppress(OSError):\n            pass",
        "a job's cgroup is not killed: what left its process group outlives its end",
        ("tests/runner/test_tree.py", "-k", "cgroup"),
    ),
    Mutant(
        "tree-ended-forgets-its-processes",
        "runner/tree.py",
        "        self.dying[job] = found\n        self._finish_dying()",
        "        self._finish_dying()",
        "without cgroups: a daemon without the job's marker outlives its job's end",
        ("tests/runner/test_tree.py", "-k", "cleared_its_environment"),
    ),
    Mutant(
        "executor-fallback-no-prologue",
        "runner/executor.py",
        '[SHELL, "-c", tree.prologue(job) + command],',
        '[SHELL, "-c", command],',
        "without clone3: the job's shell is not moved into its cgroup (a cancel misses it)",
        ("tests/runner/test_tree.py", "-k", "born_in_its_cgroup or where_one_born"),
    ),
    Mutant(
        "tree-dying-not-killed",
        "runner/tree.py",
        "        for serial, job in list(self.dying.items()):\n            self._kill(job, signal.SIGKILL)",
        "        for serial, job in list(self.dying.items()):\n            self._kill(job, 0)",
        "without cgroups: processes that left a job's group outlive its end",
        ("tests/runner/test_tree.py", "-k", "subreaper"),
    ),
    Mutant(
        "watchdog-attempts-not-scanned",
        "runner/watchdog.py",
        "    if attempts:\n        kill_attempts(attempts)",
        "    if not attempts:\n        kill_attempts(attempts)",
        "without cgroups: a job's daemon made since the runner's last walk outlives its runner",
        ("tests/runner/test_tree.py", "-k", "runner_killed_as_its_job"),
    ),
    Mutant(
        "supervisor-attempt-told-after-spawn",
        "runner/supervisor.py",
        '            self.watchdog.watch(f"+a{claim.id}:{claim.token}")\n'
        "            self.watchdog.flush(self.tree)",
        "            pass",
        "the watchdog never hears of the attempts, so it cannot find their processes",
        ("tests/runner/test_tree.py", "-k", "runner_killed_as_its_job"),
    ),
    Mutant(
        "limits-oom-not-read-v1",
        "runner/limits.py",
        '            oom = oom or _keyed(f"{memory}/memory.oom_control").get("oom_kill", 0) > 0',
        "            oom = oom",
        "an attempt the OOM killer ended is not told from any other failure (or success)",
        ("tests/runner/test_limits_executor.py", "-k", "killed_alone"),
    ),
    Mutant(
        "limits-no-cpu-quota-v1",
        "runner/limits.py",
        '        write_file(f"{path}/cpu.cfs_quota_us", str(_quota(limits.cpus)))',
        "        pass",
        "cpus is not enforced",
        ("tests/runner/test_limits_executor.py", "-k", "throttle"),
    ),
    Mutant(
        "limits-peak-from-wait4",
        "runner/limits.py",
        '            peak = _number(f"{memory}/memory.max_usage_in_bytes")',
        "            pass",
        "a limited job's peak misses the processes the runner never reaped",
        ("tests/runner/test_limits_executor.py", "-k", "never_reaped"),
    ),
    Mutant(
        "orphans-cost-lost",
        "runner/tree.py",
        "                job.cpu_s += usage.ru_utime + usage.ru_stime",
        "                pass",
        "the CPU of a job's orphans reaped by the runner is not the job's",
        ("tests/runner/test_limits_executor.py", "-k", "orphans"),
    ),
    Mutant(
        "runner-size-as-job-peak",
        "runner/limits.py",
        "    return max_rss_bytes if max_rss_bytes > _runner_peak else None",
        "    return max_rss_bytes",
        "a small job reports the runner's own size as its peak",
        ("tests/runner/test_limits_executor.py", "-k", "small_job"),
    ),
    Mutant(
        "claim-ignores-enforces-sqlite",
        "store/sql/sqlite/common.sql",
        "(:enforces = 7 OR (",
        "(1 OR (",
        "a runner that enforces no limit claims jobs with limits (and runs them unlimited)",
        ("tests/runner/test_limits_runner.py", "-k", "enforces_nothing and sqlite"),
    ),
    Mutant(
        "claim-ignores-enforces-postgres",
        "store/sql/postgres/common.sql",
        "(%(enforces)s::integer = 7 OR (",
        "(TRUE OR (",
        "a runner that enforces no limit claims jobs with limits (and runs them unlimited)",
        ("tests/runner/test_limits_runner.py", "-k", "enforces_nothing and postgres"),
    ),
    Mutant(
        "claim-ignores-queue-default-limits",
        "store/sql/sqlite/common.sql",
        "                      WHERE memory IS NOT NULL AND (:enforces & 1) = 0\n"
        "                         OR cpus IS NOT NULL AND (:enforces & 2) = 0\n"
        "                         OR max_procs IS NOT NULL AND (:enforces & 4) = 0)))",
        "                      WHERE 0)))",
        "a runner claims a job whose only limits are its queue's defaults without enforcing them",
        ("tests/runner/test_limits_runner.py", "-k", "enforces_nothing and sqlite"),
    ),
    Mutant(
        "claimed-without-queue-defaults",
        "store/sql/sqlite/common.sql",
        "     THEN (SELECT json_array(defaults.memory, defaults.cpus, defaults.max_procs)",
        "     THEN (SELECT NULL",
        "a job runs without its queue's default limits",
        ("tests/runner/test_limits_runner.py", "-k", "defaults_apply and sqlite"),
    ),
    Mutant(
        "flow-free-candidates-ignore-enforces",
        "store/sql/sqlite/flowcontrol.sql",
        "  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))\n  AND {enforced}",
        "  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))",
        "under flow control a runner claims jobs whose limits it does not enforce",
        ("tests/runner/test_limits_runner.py", "-k", "flow_control_too and sqlite"),
    ),
    Mutant(
        "usage-minute-not-counted",
        "store/migrations/sqlite/0018_fewer_triggers.sql",
        "(SELECT new.finished_at / 60000 AS minute UNION ALL SELECT -1)",
        "(SELECT -1 AS minute)",
        "status --since counts no CPU time",
        ("tests/store/test_usage.py", "-k", "sqlite and plain"),
    ),
    Mutant(
        "sqlite-claim-keeps-last-cost",
        "store/sql/sqlite/exchange.sql",
        "updated_at = :now,\n    cpu_ms = NULL, max_rss_bytes = NULL  -- this attempt's, once settled\n",
        "updated_at = :now\n",
        "an attempt cancelled or lost counts what the attempt before it cost",
        ("tests/store/test_usage.py", "-k", "sqlite and plain"),
    ),
    Mutant(
        "sqlite-batch-claim-ignores-tags",
        "store/sql/sqlite/flowcontrol.sql",
        "  AND {requires_met}\nORDER BY priority DESC, run_at, seq\nLIMIT :n",
        "ORDER BY priority DESC, run_at, seq\nLIMIT :n",
        "a limited batch's job is claimed by a runner without the tags it requires",
        ("tests/workflow/test_batches_store.py", "-k", "limits_and_tags and sqlite"),
    ),
    Mutant(
        "pg-batch-claim-ignores-limits",
        "store/sql/postgres/flowcontrol.sql",
        "lease_owner IS NOT NULL))\n"
        "  AND {enforced}  -- limits: only jobs whose every limit this runner enforces\n"
        "  AND {requires_met}\nORDER BY",
        "lease_owner IS NOT NULL))\n  AND {requires_met}\nORDER BY",
        "a limited batch's job is claimed by a runner that does not enforce its limits",
        ("tests/workflow/test_batches_store.py", "-k", "limits_and_tags and postgres"),
    ),
    Mutant(
        "attempt-cost-not-reported",
        "runner/supervisor.py",
        "            cpu_ms=attempt.cpu_ms,\n",
        "            cpu_ms=None,\n",
        "the history has no CPU time",
        ("tests/runner/test_limits_runner.py", "-k", "records_its_cost and sqlite"),
    ),
    Mutant(
        "tree-marker-ignores-runner",
        "runner/tree.py",
        "        if (runner, job_id, token) not in attempts and (\n"
        "            runner is not None or (job_id, token) not in unnamed\n"
        "        ):",
        "        if (job_id, token) not in unnamed:",
        "a dead runner's watchdog kills another store's job of the same id and claim token",
        ("tests/runner/test_watchdog_claims.py", "-k", "another_store"),
    ),
    Mutant(
        "tree-marker-by-attempt-number",
        "runner/tree.py",
        '        elif word.startswith(b"QUEUECTL_CLAIM_TOKEN="):\n'
        '            token = word[21:].decode(errors="replace")',
        '        elif word.startswith(b"QUEUECTL_ATTEMPT="):\n'
        '            token = word[17:].decode(errors="replace")',
        "a dead runner's watchdog kills a later attempt of the same number run by another runner",
        ("tests/runner/test_watchdog_claims.py",),
    ),
    # -- search, bulk changes, roles and the audit
    Mutant(
        "search-wildcards-unescaped",
        "store/reads.py",
        '    escaped = text.replace("\\\\", "\\\\\\\\").replace("%", "\\\\%").replace("_", "\\\\_")',
        "    escaped = text",
        "a search for 50% finds every job whose text has 50 followed by anything",
        ("tests/store/test_search_jobs.py", "-k", "id_prefix_command"),
    ),
    Mutant(
        "bulk-one-batch",
        "store/actions.py",
        "self._bulk_match(where, after, upto, pacer.size, window)",
        "self._bulk_match(where, after, upto, pacer.size * 100, window)",
        "a bulk change holds the write lock for all its jobs at once: claims wait for it",
        ("tests/api/test_bulk_api.py", "-k", "thousands"),
    ),
    Mutant(
        "bulk-no-recheck",
        "store/actions.py",
        "            ids = self._still_matched(conn, ids, found)\n            if not ids:\n"
        "                return 0\n            params = {",
        "            if not ids:\n                return 0\n            params = {",
        "a bulk hold, release or delete acts on a job another client moved out of the filter",
        ("tests/store/test_bulk_filter.py",),
    ),
    Mutant(
        "search-no-prefix-walk",
        "store/reads.py",
        "walks = [self._text_walk(conn, params), prefixed]",
        "walks = [self._text_walk(conn, params)]",
        "a search for an id start that many ids share finds only the jobs whose text holds it",
        ("tests/store/test_search_jobs.py", "-k", "prefix_that"),
    ),
    Mutant(
        "turns-no-waiter",
        "store/turns.py",
        "return None if kind == fcntl.F_UNLCK else int(pid)",
        "return None",
        "a SQLite writer never lets a waiting one go first: a bulk change starves claims",
        ("tests/store/test_turns.py",),
    ),
    Mutant(
        "roles-operate-enqueues",
        "api/deps.py",
        '        ("POST", "/api/jobs/bulk"),\n',
        '        ("POST", "/api/jobs/bulk"),\n        ("POST", "/api/jobs"),\n',
        "an operate token enqueues commands: code execution without the admin role",
        ("tests/api/test_roles_api.py", "-k", "each_role"),
    ),
    Mutant(
        "audit-refusals-unrecorded",
        "api/gate.py",
        "            if record is not None:\n",
        "            if record is not None and status < 400:\n",
        "a request refused for its token's role leaves no trace in the audit",
        ("tests/api/test_roles_api.py", "-k", "audited"),
    ),
    Mutant(
        "audit-never-expires",
        "runner/maintenance.py",
        "        AuditExpiry(runner),\n",
        "",
        "runners keep the audit forever, whatever retain_audit says",
        ("tests/runner/test_audit_retention.py",),
    ),
    # -- control before a job runs
    Mutant(
        "pg-held-job-promoted",
        "store/sql/postgres/exchange.sql",
        "  AND NOT held  -- a held job stays scheduled, out of the claim, until released\n",
        "",
        "a held job whose run_at has come is promoted and claimed",
        ("tests/workflow/test_hold_jobs.py", "-k", "never_claimed and postgres"),
    ),
    Mutant(
        "pg-hold-stays-claimable",
        "store/sql/postgres/control.sql",
        "UPDATE jobs SET held = true, scheduled = true, updated_at = %(now)s::bigint\n",
        "UPDATE jobs SET held = true, updated_at = %(now)s::bigint\n",
        "a held job stays in the claim's index: a runner runs it",
        ("tests/workflow/test_hold_jobs.py", "-k", "race and postgres"),
    ),
    Mutant(
        "pg-edit-unguarded",
        "store/sql/postgres/control.sql",
        "WHERE id = %(id)s AND state IN ('pending', 'failed') AND lease_owner IS NULL\n",
        "WHERE id = %(id)s AND state <> 'completed'\n",
        "an edit lands on a job already claimed, and says it changed what runs",
        ("tests/workflow/test_edit_jobs.py", "-k", "race and postgres"),
    ),
    Mutant(
        "sqlite-claim-starts-expired",
        "store/sql/sqlite/exchange.sql",
        "AND (expires_at IS NULL OR expires_at > :now)  -- expired: cancelled by maintenance\n",
        "",
        "the plain claim starts a job past its deadline",
        ("tests/workflow/test_expires_jobs.py", "-k", "never_claimed and sqlite"),
    ),
    Mutant(
        "runner-no-deadlines",
        "runner/maintenance.py",
        "        Deadlines(runner),\n",
        "",
        "no runner cancels the jobs past their deadline",
        ("tests/workflow/test_expires_jobs.py", "-k", "runner_cancels and sqlite"),
    ),
    Mutant(
        "settle-ignores-queue-default-retries",
        "store/settle.py",
        "                ours[outcome.job_id] = replace(fence, max_retries=outcome.fence.max_retries)",
        "                pass",
        "a queue's default max_retries is not what decides the retry",
        ("tests/cli/test_queue_defaults_cli.py", "-k", "decides_the_retry"),
    ),
    Mutant(
        "sqlite-requires-ignored",
        "store/sql/sqlite/exchange.sql",
        "(requires IS NULL OR NOT EXISTS (",
        "(requires IS NOT NULL OR NOT EXISTS (",
        "a runner without a job's required tags claims it",
        ("tests/workflow/test_tags_claims.py", "-k", "every_required and sqlite"),
    ),
    Mutant(
        "silence-output-not-noted",
        "runner/executor.py",
        "        if moved == 0 and attempt.silence_s is not None:",
        "        if False:",
        "an attempt that keeps writing is killed by its silence timeout",
        ("tests/workflow/test_silence_timeout.py", "-k", "alive and sqlite"),
    ),
    Mutant(
        "sqlite-progress-unfenced",
        "store/sql/sqlite/exchange.sql",
        "WHERE id = :id AND state = 'processing' AND token = :token\n",
        "WHERE id = :id AND state = 'processing'\n",
        "a report from an attempt no longer current changes the job's progress",
        ("tests/workflow/test_progress_reports.py", "-k", "later and sqlite"),
    ),
]


def stale(mutants: list[Mutant]) -> list[tuple[Mutant, int]]:
    """The entries whose `old` text does not occur exactly once in their file (with the count)."""
    found = []
    for mutant in mutants:
        count = (SRC / mutant.file).read_text().count(mutant.old)
        if count != 1:
            found.append((mutant, count))
    return found
