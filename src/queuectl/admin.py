"""Admin: the operators' half of `Queue` (what status and /metrics count, configuration,
queues' limits and defaults, runners, schedules, hooks, API tokens and the audit, purge, bulk
changes and reset). `Queue` composes one and offers its methods as its own."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from queuectl import config as config_keys
from queuectl.durations import parse_duration
from queuectl.errors import InvalidInputError, NotFoundError
from queuectl.flow import parse_concurrency, parse_rate, rate_json, window_opens_at
from queuectl.models import (
    FINISHED_STATES,
    PROCESSING,
    STATES,
    Job,
    name_list,
    new_job,
    parse_cpus,
    parse_max_procs,
    parse_memory,
    parse_states,
    validate_id,
    validate_search,
)
from queuectl.shapes import runner_dict
from queuectl.store import (
    AuditEntry,
    Bucket,
    Hook,
    JobFilter,
    QueueDefaults,
    QueueSettings,
    Runner,
    Schedule,
    Store,
    Token,
    Totals,
)

if TYPE_CHECKING:
    from queuectl.explain import QueueFlow
    from queuectl.runner.recovery import Recovered
    from queuectl.usage import Usage

#: The roles of API tokens, each allowed what the one before it is, and more.
ROLES = ("read", "operate", "admin")
#: The start of every API token made by `add_token` (a secret scanner can know them by it).
TOKEN_PREFIX = "qct_"
#: What `bulk` may do to the jobs a filter matches.
BULK_ACTIONS = ("cancel", "retry", "hold", "release", "delete")
#: A limit `set_queue` leaves as it is (None removes one).
UNCHANGED: Any = object()
#: `status` shows the progress of at most this many running jobs (the newest).
STATUS_PROGRESS_JOBS = 50


class Admin:
    """What operators set and watch, on one store."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -- what status and /metrics count

    def count(
        self, state: str | Sequence[str] | None = None, queue: str | Sequence[str] | None = None
    ) -> int:
        """How many jobs are in any of the states and queues given (None: any)."""
        states, queues = name_list(state), name_list(queue)
        return sum(
            number
            for name, per_state in self._store.counts().items()
            if queues is None or name in queues
            for in_state, number in per_state.items()
            if states is None or in_state in states
        )

    def status(self, since: str | float | None = None) -> dict[str, Any]:
        """Counts per state and queue, live runners, and jobs completed in the last minute;
        with `since` (a duration: "10m", or seconds), the jobs finished in that window by
        state."""
        window_s = None if since is None else parse_duration(since, "since")
        runners = [runner_dict(r) for r in self.runners()]
        per_queue = self._store.counts()
        counts = dict.fromkeys(STATES, 0)
        for states in per_queue.values():
            for state, count in states.items():
                counts[state] = counts.get(state, 0) + count
        queues = {
            name: {**dict.fromkeys(STATES, 0), **states} for name, states in per_queue.items()
        }
        return {
            "counts": counts,
            "queues": queues,
            "runners": runners,
            "done_last_minute": self.done_since(self._store.now() - 60_000),
            "progress": self.running_progress(),
            **({} if window_s is None else {"since": self.finished_since(window_s)}),
        }

    def running_progress(self, limit: int = STATUS_PROGRESS_JOBS) -> builtins.list[dict[str, Any]]:
        """The running jobs that reported progress (of the `limit` newest running), each
        {"id", "queue", "progress"}."""
        return [
            {"id": job.id, "queue": job.queue, "progress": report}
            for job in self._store.list_jobs(JobFilter(states=[PROCESSING]), limit).jobs
            if (report := job.progress_dict()) is not None
        ]

    def finished_since(self, seconds: float) -> dict[str, Any]:
        """{"seconds", "completed", "dead", "cancelled", "cpu_seconds"}: the jobs that finished
        in the last `seconds`, the window's start included, and the CPU time of the attempts
        that ended in it (counted by the minute: from the start of the window's first)."""
        start = self._store.now() - round(seconds * 1000)
        shown = int(seconds) if float(seconds).is_integer() else seconds
        cpu_seconds = self._store.cpu_since(start) / 1000
        return {"seconds": shown, **self._store.finished_since(start), "cpu_seconds": cpu_seconds}

    def usage_totals(self) -> builtins.list[Usage]:
        """What the attempts that ended cost, per queue and peak-memory bucket, since the store
        began (the counters of /metrics)."""
        return self._store.usage_totals()

    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs per queue, then per state (states with no job are absent)."""
        return self._store.counts()

    def done_since(self, since_ms: int) -> int:
        """Jobs completed at or after the instant (epoch milliseconds)."""
        return self._store.done_since(since_ms)

    def finished_per_minute(self, since_ms: int) -> dict[int, dict[str, int]]:
        """Jobs whose last attempt ended since the instant: minute -> state -> count."""
        return self._store.finished_per_minute(since_ms)

    def attempts_by_queue(self) -> dict[str, dict[str, int]]:
        """Attempts started by the stored jobs, per queue, then per state."""
        return self._store.attempts_by_queue()

    def recent_durations(self, since_ms: int) -> dict[str, builtins.list[Bucket]]:
        """Durations of the attempts that ended since the instant's minute, per queue, in the
        buckets of DURATION_BOUNDS_MS."""
        return self._store.recent_durations(since_ms)

    def totals(self) -> Totals:
        """The counters that only go up (jobs enqueued, finished, attempts ended and their
        durations), per queue."""
        return self._store.totals()

    def oldest_due(self) -> dict[str, int]:
        """Per queue, the earliest run_at of the jobs that may start now."""
        return self._store.oldest_due(self._store.now())

    # -- configuration

    def config(self) -> dict[str, float]:
        return self._store.config()

    def get_config(self, key: str) -> float:
        return self._store.config()[config_keys.canonical_key(key)]

    def set_config(self, key: str, value: object) -> float:
        name, checked = config_keys.validate(key, value)
        self._store.set_config(name, checked)
        return checked

    # -- queues

    def queues(self) -> dict[str, dict[str, Any]]:
        """Every named queue (with jobs, paused or limited): whether paused, its limits and its
        counts per state (as `queue list --json` gives them)."""
        settings = self._store.queue_settings()
        counts = self._store.counts()
        defaults = self._store.queue_defaults()
        names = sorted(set(settings) | set(counts))
        none = QueueSettings(False, None, None, None, 0)
        return {
            name: {
                "paused": settings.get(name, none).paused,
                "concurrency": settings.get(name, none).concurrency,
                "rate": rate_json(
                    settings.get(name, none).rate_jobs, settings.get(name, none).rate_ms
                ),
                "counts": {**dict.fromkeys(STATES, 0), **counts.get(name, {})},
                "memory": settings.get(name, none).memory,
                "cpus": settings.get(name, none).cpus,
                "max_procs": settings.get(name, none).max_procs,
                # Only queues with defaults carry them, so others keep their documented shape.
                **({"defaults": _defaults_json(defaults[name])} if name in defaults else {}),
            }
            for name in names
        }

    def set_queue(
        self,
        name: str,
        concurrency: object = UNCHANGED,
        rate: object = UNCHANGED,
        memory: object = UNCHANGED,
        cpus: object = UNCHANGED,
        max_procs: object = UNCHANGED,
    ) -> dict[str, Any]:
        """Set a queue's concurrency (N, or None: no limit) and rate ("N/DURATION", or None),
        and its jobs' default limits (memory, cpus, max_procs: a value, or None/"none": no
        default); what is not given stays as it is. The queue need not have jobs yet. Its new
        entry of `queues()`."""
        validate_id(name, "queue")
        defaults = {"memory": memory, "cpus": cpus, "max_procs": max_procs}
        given = {key: value for key, value in defaults.items() if value is not UNCHANGED}
        if concurrency is UNCHANGED and rate is UNCHANGED and not given:
            raise InvalidInputError("give a concurrency, a rate, or a default limit")
        parsers = {"memory": parse_memory, "cpus": parse_cpus, "max_procs": parse_max_procs}
        values = {
            key: None if value is None or value == "none" else parsers[key](value)
            for key, value in given.items()
        }
        limit = None if concurrency is UNCHANGED else parse_concurrency(concurrency)
        window = None if rate is UNCHANGED else parse_rate(rate)
        if concurrency is not UNCHANGED or rate is not UNCHANGED:
            self._store.set_limits(
                name,
                limit,
                window,
                keep_concurrency=concurrency is UNCHANGED,
                keep_rate=rate is UNCHANGED,
            )
        if values:
            self._store.set_job_defaults(name, values)
        return self.queues()[name]

    def job_limits(self, job: Job) -> dict[str, Any]:
        """The limits a job runs under, by name: its own, else its queue's defaults."""
        settings = self._store.queue_settings().get(job.queue)
        found = {}
        for name in ("memory", "cpus", "max_procs"):
            value = getattr(job, name)
            if value is None and settings is not None:
                value = getattr(settings, name)
            if value is not None:
                found[name] = value
        return found

    def set_queue_defaults(
        self, name: str, timeout: object = UNCHANGED, max_retries: object = UNCHANGED
    ) -> dict[str, Any]:
        """Set a queue's defaults for its jobs that set none of their own: `timeout` (a
        duration; "none" or None: no default) and `max_retries` (N; "none" or None: no
        default); one not given stays. Runners apply them to every attempt they start from
        then on, of jobs already waiting too. Its new entry of `queues()`."""
        validate_id(name, "queue")
        if timeout is UNCHANGED and max_retries is UNCHANGED:
            raise InvalidInputError("give a timeout, max_retries, or both")
        seconds = None
        if timeout is not UNCHANGED and timeout not in (None, "none"):
            seconds = parse_duration(timeout, "timeout")  # type: ignore[arg-type]
        retries = None
        if max_retries is not UNCHANGED and max_retries not in (None, "none"):
            retries = new_job({"command": "true", "max_retries": max_retries}).max_retries
        kept = {"timeout": timeout, "max_retries": max_retries}
        self._store.set_queue_defaults(
            name,
            QueueDefaults(seconds, retries),
            [field for field, value in kept.items() if value is UNCHANGED],
        )
        return self.queues()[name]

    def queue_flow(self, name: str) -> QueueFlow:
        """A queue's limits and where it stands against them now (for `explain`)."""
        from queuectl.explain import QueueFlow

        settings = self._store.queue_settings().get(name)
        if settings is None:
            return QueueFlow(None, 0, None, 0, None)
        opens_at = None
        started = 0
        if settings.rate_jobs is not None and settings.rate_ms is not None:
            starts = self._store.window_starts(name, self._store.now() - settings.rate_ms)
            started = len(starts)
            opens_at = window_opens_at(starts, settings.rate_jobs, settings.rate_ms)
        return QueueFlow(
            settings.concurrency, settings.running, settings.rate_jobs, started, opens_at
        )

    def lock_holder(self, key: str) -> str | None:
        """The id of the running job that holds the lock, if any."""
        return self._store.lock_holder(key)

    def is_paused(self, queue: str) -> bool:
        return self._store.queues().get(queue, False)

    def pause(self, queue: str) -> None:
        self._store.set_paused(validate_id(queue, "queue"), True)

    def resume(self, queue: str) -> None:
        self._store.set_paused(validate_id(queue, "queue"), False)

    # -- runners

    def runners(self) -> builtins.list[Runner]:
        """Live runners: those that look gone (see liveness.is_dead) are left out."""
        return self._runners(lost=False)

    def lost_runners(self) -> builtins.list[Runner]:
        """Registered runners that look gone: shown, not acted on (a runner or `recover` is)."""
        return self._runners(lost=True)

    def _runners(self, lost: bool) -> builtins.list[Runner]:
        if not (runners := self._store.runners()):
            return runners
        from queuectl.runner.liveness import is_dead  # the runner's modules: only with one up

        now_ms, lease_s = self._store.now(), float(self._store.config()["lease_seconds"])
        return [r for r in runners if is_dead(r, now_ms, lease_s) == lost]

    def recover(self) -> Recovered:
        """What runners do as they run: kill what this host's gone runners left, unregister the
        runners that look gone, run their jobs (and expired leases') again as 'worker lost'."""
        from queuectl.runner.recovery import recover_now

        return recover_now(self._store)

    def request_stop(self) -> int:
        """Ask every runner of this store to stop gracefully; how many were asked."""
        return self._store.request_stop()

    def withdraw_stop(self) -> int:
        """Withdraw the stop asked of runners still draining (they take jobs again); how many."""
        return self._store.withdraw_stop()

    def unserved(self, names: Sequence[str]) -> dict[str, str]:
        """The queues of `names` no runner serves: {name: "none is up" or "stopping"}."""
        alive = self.runners()
        found = {}
        for name in sorted(set(names)):
            serving = [r for r in alive if r.queues is None or name in r.queues]
            if all(r.stop_requested for r in serving):  # none serving, or every one stopping
                found[name] = "stopping" if serving else "none is up"
        return found

    # -- schedules

    def add_schedule(
        self,
        name: str,
        job: dict[str, Any],
        cron: str | None = None,
        every: str | float | None = None,
        tz: str | None = None,
    ) -> Schedule:
        """Create (or replace) a schedule: one job per cron slot or per `every` interval."""
        from queuectl.schedule import next_slot_ms, validate_schedule

        name, cron, every_s, tz, template = validate_schedule(name, cron, every, tz, job)
        now = self._store.now()
        schedule = Schedule(
            name=name,
            cron=cron,
            every_s=every_s,
            tz=tz,
            job=template,
            created_at_ms=now,
            last_at_ms=None,
            next_at_ms=next_slot_ms(cron, every_s, tz, now, now),
        )
        self._store.add_schedule(schedule)
        return schedule

    def remove_schedule(self, name: str) -> None:
        if not self._store.remove_schedule(name):
            raise NotFoundError(f"no schedule {name!r}")

    def schedules(self) -> builtins.list[Schedule]:
        return self._store.schedules()

    # -- hooks

    def add_hook(
        self, name: str, on: str | builtins.list[str], job: dict[str, Any], queue: str | None = None
    ) -> Hook:
        """Create (or replace) a hook: when a job (of `queue`, None: of any) reaches one of
        the events `on` ("completed,dead" or a list), `job` is enqueued with the event in its
        environment, in the same transaction."""
        from queuectl.hook import validate_hook

        name, events, queue, template = validate_hook(name, on, queue, job)
        hook = Hook(name, events, queue, template, self._store.now())
        self._store.add_hook(hook)
        return hook

    def remove_hook(self, name: str) -> None:
        if not self._store.remove_hook(name):
            raise NotFoundError(f"no hook {name!r}")

    def hooks(self) -> builtins.list[Hook]:
        return self._store.hooks()

    # -- who may call the HTTP API, and what they did

    def add_token(self, name: str, role: str) -> str:
        """Make an API token with a role (read, operate, admin); the token, which only its
        digest is stored of: shown once."""
        import hashlib
        import secrets

        validate_id(name, "name")
        if role not in ROLES:
            raise InvalidInputError(f"role: {role!r} is not one of {', '.join(ROLES)}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._store.add_token(name, role, hashlib.sha256(secret.encode()).hexdigest())
        return secret

    def tokens(self) -> builtins.list[Token]:
        return self._store.tokens()

    def revoke_token(self, name: str) -> None:
        if not self._store.revoke_token(name):
            raise NotFoundError(f"no token {name!r}")

    def token_role(self, secret: str) -> tuple[str, str] | None:
        """The name and role of an API token, if it is one."""
        import hashlib

        return self._store.token_role(hashlib.sha256(secret.encode()).hexdigest())

    def record_audit(self, entry: AuditEntry) -> None:
        self._store.record_audit(entry)

    def audit(
        self, since: str | float | None = None, limit: int = 1000
    ) -> builtins.list[AuditEntry]:
        """The audit's entries, newest first: of the last `since` (a duration), or all kept."""
        since_ms = 0
        if since is not None:
            since_ms = self._store.now() - round(parse_duration(since, "since") * 1000)
        return self._store.audit(since_ms, limit)

    def expire_audit(self, older_than: str | float | None = None) -> int:
        """Delete the audit's entries older than `older_than` (default: `retain_audit`; 0
        keeps them all); how many."""
        keep_s = parse_duration(
            self.get_config("retain_audit") if older_than is None else older_than, "older-than"
        )
        if keep_s <= 0:
            return 0
        before = self._store.now() - round(keep_s * 1000)
        done = 0
        while (deleted := self._store.expire_audit(before, 1000)) > 0:
            done += deleted
        return done

    # -- many jobs at once, and the whole store

    def purge(
        self,
        state: str,
        older_than: str | float = 0,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete finished jobs in `state` that finished more than `older_than` ago, in batches
        that each commit (`progress` gets the jobs deleted so far after each)."""
        states = purgeable_states(state)
        age_s = parse_duration(older_than, "older-than")
        cutoff = self._store.now() - round(age_s * 1000)
        return self._store.purge(states, cutoff + (1 if age_s == 0 else 0), progress=progress)

    def bulk(
        self,
        action: str,
        state: str | Sequence[str] | None = None,
        queue: str | Sequence[str] | None = None,
        search: str | None = None,
        *,
        batch: str | None = None,
        held: bool = False,
        all: bool = False,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> dict[str, int]:
        """Cancel, retry, hold, release or delete (`action`) every job matching the filter
        (any of the states and queues, of `batch`, only held ones, and `search` as in
        `search`), in batches that each commit; `progress(matched, changed)` after each. An
        empty filter needs `all=True`. {"matched", "changed"}: jobs whose state forbids the
        action are matched, not changed; `dry_run`: {"matched"} only, nothing changed."""
        if action not in BULK_ACTIONS:
            raise InvalidInputError(f"action: {action!r} is not one of {', '.join(BULK_ACTIONS)}")
        states = parse_states(state)
        queues = [validate_id(name, "queue") for name in name_list(queue) or ()] or None
        if batch is not None:
            validate_id(batch, "batch")
        if search:
            validate_search(search)
        if not (states or queues or search or batch is not None or held) and not all:
            raise InvalidInputError(
                "filter: an empty filter matches every job; give a state, a queue, a batch or "
                "a search, or all: true"
            )
        if dry_run and not (search or batch is not None or held):
            return {"matched": self.count(states, queues)}
        where = JobFilter(states, queues, search or None, batch, held)
        matched, changed = self._store.bulk(
            None if dry_run else action, where, progress=None if dry_run else progress
        )
        if dry_run:
            return {"matched": matched}
        return {"matched": matched, "changed": changed}

    def reset(self, all: bool = False) -> dict[str, int]:
        """Delete every job with its history and output, in one transaction (`all`: also the
        schedules, hooks, queue settings and configuration). Refused while a runner is up.
        What was deleted: counts by kind."""
        self.recover()  # only a live runner refuses the reset; a dead one's jobs are deleted
        return self._store.reset(all)


def purgeable_states(state: str) -> list[str]:
    """The states a purge may delete: finished ones only."""
    if state not in FINISHED_STATES:
        raise InvalidInputError(
            f"state: only finished jobs can be purged "
            f"({', '.join(sorted(FINISHED_STATES))}), got {state!r}"
        )
    return [state]


def _defaults_json(defaults: QueueDefaults) -> dict[str, Any]:
    return {"timeout": defaults.timeout, "max_retries": defaults.max_retries}
