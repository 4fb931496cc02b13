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
SQLITE_SQL = "store/sql/sqlite.sql"
PG_SQL = "store/sql/postgres.sql"


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
        SQLITE_SQL,
        "SET waiting_on = waiting_on - (\n",
        "SET waiting_on = waiting_on - 1 + 0 * (\n",
        "dependants wait on one fewer, however many of their dependencies completed at once",
        _contract("dependencies_that_complete_together"),
    ),
    Mutant(
        "sqlite-claim-lowest-priority-first",
        SQLITE_SQL,
        "    ORDER BY priority DESC, run_at, seq\n    LIMIT :want)\nRETURNING id, attempts, command",
        "    ORDER BY priority, run_at, seq\n    LIMIT :want)\nRETURNING id, attempts, command",
        "the plain claim takes the lowest priority first",
        _contract("claim_order", "claim_one_at_a_time"),
    ),
    Mutant(
        "sqlite-fence-ignores-owner",
        SQLITE_SQL,
        "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'processing' AND lease_owner = ?",
        "WHERE id IN (SELECT value FROM json_each(?)) AND state = 'processing' AND ? IS NOT NULL",
        "a settlement is fenced by the job's state only, not by the runner holding it",
        _contract("fenced_out", "late_writer", "cancelled_job_changes_nothing"),
    ),
    Mutant(
        "sqlite-expired-lease-inverted",
        SQLITE_SQL,
        "WHERE state = 'processing' AND lease_expires_at < :now AND lease_owner <> :exclude",
        "WHERE state = 'processing' AND lease_expires_at > :now AND lease_owner <> :exclude",
        "the reaper takes the leases that have not expired",
        _contract("reaped_as_worker_lost", "heartbeat_renews", "worker_lost_on_the_last"),
    ),
    Mutant(
        "sqlite-renew-no-leases",
        SQLITE_SQL,
        "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'processing'",
        "UPDATE jobs SET lease_expires_at = ? WHERE lease_owner = ? AND state = 'pending'",
        "a heartbeat renews the runner but not its leases",
        _contract("heartbeat_renews"),
    ),
    Mutant(
        "sqlite-cancel-not-transitive",
        SQLITE_SQL,
        "    SELECT job_deps.job_id FROM job_deps JOIN doomed ON job_deps.dep_id = doomed.id\n)\n"
        "UPDATE jobs\nSET state = 'cancelled', last_error = :reason",
        "    SELECT job_deps.job_id FROM job_deps JOIN doomed ON 0\n)\n"
        "UPDATE jobs\nSET state = 'cancelled', last_error = :reason",
        "a dead dependency cancels its dependants but not theirs (they wait forever)",
        _contract("dead_dependency_cancels"),
    ),
    Mutant(
        "sqlite-promote-a-second-late",
        SQLITE_SQL,
        "WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at <= ?",
        "WHERE scheduled = 1 AND state IN ('pending', 'failed') AND run_at + 1000 <= ?",
        "a delayed job becomes due a second after its run_at",
        _contract("skips_jobs_not_yet_due", "backs_off_then_dies"),
    ),
    Mutant(
        "sqlite-release-keeps-the-attempt",
        SQLITE_SQL,
        "SET state = 'pending', attempts = attempts - 1, lease_owner = NULL",
        "SET state = 'pending', attempts = attempts, lease_owner = NULL",
        "a job given back by a stopping runner uses up an attempt",
        _contract("release_gives_the_attempt_back"),
    ),
    Mutant(
        "sqlite-concurrency-one-over",
        SQLITE_SQL,
        "            :want, limits.concurrency - (",
        "            :want, limits.concurrency + 1 - (",
        "a concurrency-limited queue runs one job more than its limit",
        ("tests/store/test_flow.py", "-k", "concurrency_runs_exactly or lost_lease_frees"),
    ),
    Mutant(
        "sqlite-lock-held-by-pending",
        SQLITE_SQL,
        "WHERE lock_key IN (SELECT value FROM json_each(:keys)) AND state = 'processing'",
        "WHERE lock_key IN (SELECT value FROM json_each(:keys)) AND state = 'completed'",
        "a lock counts as held by a completed job, not a running one (two holders at once)",
        ("tests/store/test_flow.py", "-k", "locks or lock_inside"),
    ),
    Mutant(
        "sqlite-rate-prunes-the-window",
        SQLITE_SQL,
        "DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :since",
        "DELETE FROM queue_starts WHERE queue = :queue AND started_at <= :since + 60000",
        "the rate limit forgets starts still inside its window",
        ("tests/store/test_flow.py", "-k", "rate"),
    ),
    Mutant(
        "sqlite-expire-any-state",
        SQLITE_SQL,
        "      AND +state IN (SELECT value FROM json_each(:states))\n    LIMIT :batch)",
        "    LIMIT :batch)",
        "retention deletes jobs of any state that ever finished (failed jobs awaiting a retry)",
        ("tests/store/test_retention_race.py", "tests/store/test_history.py", "-k", "expire"),
    ),
    Mutant(
        "sqlite-housekeeping-never-expired",
        SQLITE_SQL,
        "            WHERE state = 'processing' AND lease_expires_at < :now\n"
        "              AND lease_owner <> :owner)\n    OR EXISTS",
        "            WHERE state = 'processing' AND lease_expires_at < 0\n"
        "              AND lease_owner <> :owner)\n    OR EXISTS",
        "a runner never sees another's expired lease: its job waits until that runner is dead",
        _contract("housekeeping_reads"),
    ),
    Mutant(
        "sqlite-requeue-waits-on-nothing",
        SQLITE_SQL,
        "    duration_ms = NULL, waiting_on = :waiting_on",
        "    duration_ms = NULL, waiting_on = 0",
        "a job run again starts before its dependencies, pending again, complete",
        ("tests/store/test_hostile_history.py", "-k", "requeue"),
    ),
    # -- the PostgreSQL store's SQL
    Mutant(
        "pg-settle-unblocks-on-failure",
        PG_SQL,
        "      AND EXISTS (SELECT 1 FROM settled WHERE state = 'completed')",
        "      AND EXISTS (SELECT 1 FROM settled WHERE state IN ('completed', 'failed'))",
        "a dependency that fails and will retry unblocks its dependants",
        _contract("failed_dependency"),
    ),
    Mutant(
        "pg-claim-lowest-priority-first",
        PG_SQL,
        "    ORDER BY priority DESC, run_at, seq\n    LIMIT %(want)s::bigint\n    FOR UPDATE SKIP LOCKED\n)",
        "    ORDER BY priority, run_at, seq\n    LIMIT %(want)s::bigint\n    FOR UPDATE SKIP LOCKED\n)",
        "the plain claim takes the lowest priority first",
        _contract("claim_order", "claim_one_at_a_time"),
    ),
    Mutant(
        "pg-fence-ignores-owner",
        PG_SQL,
        "WHERE id = ANY(%s) AND state = 'processing' AND lease_owner = %s",
        "WHERE id = ANY(%s) AND state = 'processing' AND %s IS NOT NULL",
        "a settlement read is fenced by the job's state only, not by the runner holding it",
        _contract("fenced_out", "late_writer", "cancelled_job_changes_nothing", "cancel"),
    ),
    Mutant(
        "pg-expired-lease-inverted",
        PG_SQL,
        "WHERE state = 'processing' AND lease_expires_at < %(now)s::bigint\n"
        "  AND lease_owner <> %(exclude)s::text",
        "WHERE state = 'processing' AND lease_expires_at > %(now)s::bigint\n"
        "  AND lease_owner <> %(exclude)s::text",
        "the reaper takes the leases that have not expired",
        _contract("reaped_as_worker_lost", "heartbeat_renews", "worker_lost_on_the_last"),
    ),
    Mutant(
        "pg-unblock-by-one",
        PG_SQL,
        "UPDATE jobs SET waiting_on = jobs.waiting_on - done.n",
        "UPDATE jobs SET waiting_on = jobs.waiting_on - 1",
        "the general settlement path: dependants wait on one fewer however many completed",
        _contract("dependencies_that_complete_together"),
    ),
    Mutant(
        "pg-lock-held-by-pending",
        PG_SQL,
        "SELECT lock_key FROM jobs WHERE lock_key = ANY(%(keys)s::text[]) AND state = 'processing'",
        "SELECT lock_key FROM jobs WHERE lock_key = ANY(%(keys)s::text[]) AND state = 'completed'",
        "a lock counts as held by a completed job, not a running one (two holders at once)",
        ("tests/store/test_flow.py", "-k", "locks or lock_inside"),
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
        ("tests/store/test_concurrency.py",),
    ),
    Mutant(
        "pg-fenced-out-reported-settled",
        "store/postgres.py",
        "for o, s, cursor in settling if cursor.fetchone() is not None}",
        "for o, s, cursor in settling if cursor.fetchone() is not None or True}",
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
        "store/core.py",
        "                if states[dep] in (DEAD, CANCELLED):\n                    cancelled_by",
        "                if states[dep] in (DEAD,):\n                    cancelled_by",
        "a job enqueued after a cancelled dependency is stored pending and waits forever",
        _contract("cancelled_dependency"),
    ),
    Mutant(
        "core-insert-waits-on-nothing",
        "store/core.py",
        "waiting_on = sum(1 for dep in job.depends_on if states[dep] != COMPLETED)",
        "waiting_on = sum(1 for dep in job.depends_on if states[dep] == DEAD)",
        "a job enqueued after a pending dependency starts at once",
        _contract("depends_on_waits_for_completion"),
    ),
    Mutant(
        "core-dead-does-not-cascade",
        "store/core.py",
        "            if settlement.state in (DEAD, CANCELLED):\n                cascaded +=",
        "            if settlement.state == CANCELLED:\n                cascaded +=",
        "a dependency that ends dead leaves its dependants waiting forever",
        _contract("dead_dependency_cancels"),
    ),
    Mutant(
        "core-unblock-on-failure",
        "store/core.py",
        "o.job_id for o, s in decided if s.state == COMPLETED and o.job_id in with_dependants",
        "o.job_id for o, s in decided if s.state != DEAD and o.job_id in with_dependants",
        "a dependency that fails and will retry unblocks its dependants",
        _contract("failed_dependency"),
    ),
    Mutant(
        "core-requeue-after-cancelled-dependency",
        "store/core.py",
        "                if dep_state.get(dep) in (DEAD, CANCELLED):",
        "                if dep_state.get(dep) in (DEAD,):",
        "a job requeued while its dependency is cancelled is pending and waits forever",
        ("tests/store/test_hostile_history.py", "-k", "requeue"),
    ),
    Mutant(
        "core-decide-ahead-through-dead",
        "store/core.py",
        "if len(decided) != len(outcomes) or any(s.state in (DEAD, CANCELLED) for _, s in decided):",
        "if len(decided) != len(outcomes):",
        "PostgreSQL's one-round-trip settlement takes a dead outcome: no cascade to dependants",
        _contract("dead_dependency_cancels"),
    ),
    Mutant(
        "core-decide-ahead-with-hooks",
        "store/core.py",
        "        if outcomes and self._hooks(self._connection()):\n            return None",
        "        if False:\n            return None",
        "PostgreSQL's one-round-trip settlement skips the hooks on completion",
        ("tests/store/test_hooks_store.py", "-k", "claims_rules"),
    ),
    Mutant(
        "core-reap-own-leases",
        "store/core.py",
        'expired = {"now": now, "exclude": exclude or ""}',
        'expired = {"now": now, "exclude": ""}',
        "a runner reaps its own expired leases (a clock step recovers its running jobs)",
        _contract("own_expired_leases"),
    ),
    # -- the library
    Mutant(
        "queue-retry-all-cancelled",
        "queue.py",
        "return self._store.requeue(None, [DEAD], name)",
        "return self._store.requeue(None, [DEAD, CANCELLED], name)",
        "dlq retry --all also runs the cancelled jobs again",
        _contract("retry_all"),
    ),
    # -- the runner
    Mutant(
        "runner-slots-ignore-running",
        "runner/supervisor.py",
        "free = self.count - len(self.running)",
        "free = self.count",
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
        "            self.unreleased.append((claim.id, claim.attempt))",
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
        "runner/supervisor.py",
        "            if size != attempt.synced_size:",
        "            if size != size:",
        "a running job's output reaches the store only when it ends (logs --follow sees nothing)",
        ("tests/runner/test_output.py", "-k", "follow"),
    ),
    Mutant(
        "executor-default-timeout-ignored",
        "runner/executor.py",
        "timeout_s = claim.timeout or default_timeout_s or None",
        "timeout_s = claim.timeout or None",
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
        "if not name.isdigit() or _marker(int(name)) not in attempts:",
        "if not name.isdigit() or _marker(int(name)) not in attempts or True:",
        "a dead runner's job processes are not found, so not killed before its slot is freed",
        ("tests/reliability/test_leftovers.py",),
    ),
    Mutant(
        "tree-cgroup-not-killed",
        "runner/tree.py",
        '                _write(f"{path}/cgroup.kill", "1")\n            return',
        "                pass\n            return",
        "a job's cgroup is not killed: what left its process group outlives its end",
        ("tests/runner/test_escapees.py", "-k", "cgroup"),
    ),
    Mutant(
        "tree-dying-not-killed",
        "runner/tree.py",
        "        for serial, job in list(self.dying.items()):\n            self._kill(job, signal.SIGKILL)",
        "        for serial, job in list(self.dying.items()):\n            self._kill(job, 0)",
        "without cgroups: processes that left a job's group outlive its end",
        ("tests/runner/test_escapees.py", "-k", "subreaper"),
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
