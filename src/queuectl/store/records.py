"""The records the store exchanges with its callers, and the runner's ledger of its claims."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from queuectl.lifecycle import Settlement
    from queuectl.models import Job

#: Jobs a bulk change (cancel_all, requeue of every dead job, purge) takes per transaction:
#: each batch commits, so other clients' enqueues and claims wait for one batch at most.
BULK_BATCH = 1000


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The limits of what an attempt may use (None: none): bytes of memory, CPUs, processes."""

    memory: int | None = None
    cpus: float | None = None
    max_procs: int | None = None


@dataclass(frozen=True)
class Claim(Limits):
    """A job taken by a runner: what it needs to run one attempt, and the limits it runs
    under: its own, else its queue's defaults."""

    id: str
    attempt: int
    #: This claim's token: the job's claims counted, never reset (its attempt numbers start
    #: again when it is requeued). Every write about the attempt is fenced by it.
    token: int
    command: str
    cwd: str
    env: dict[str, str]
    timeout: float | None
    queue: str
    priority: int
    #: The job's retry rules, for the outcome (lifecycle.Fence); None when the claim did not
    #: read them (the store then reads them when it settles).
    max_retries: int | None = None
    no_retry_exit_codes: list[int] = field(default_factory=list)
    #: Seconds without output after which the attempt is killed (None: never).
    silence_timeout: float | None = None


@dataclass(frozen=True)
class Exchange:
    """What `finish_and_claim` did: how each outcome settled (fenced-out ones are missing), the
    jobs claimed, and when the next delayed job falls due (read in the same transaction, so a
    job that becomes due between a claim and the runner's sleep cannot be missed)."""

    settled: dict[str, Settlement]
    claims: list[Claim]
    next_due_ms: int | None = None


@dataclass
class Runner:
    """A runner process as registered in the store."""

    id: str
    host: str
    pid: int
    workers: int
    queues: list[str] | None
    started_at_ms: int
    heartbeat_at_ms: int
    pid_started: str | None = None
    stop_requested: bool = False
    running: list[str] = field(default_factory=list)
    #: The limits it enforces (models.LIMITS); it claims no job with another.
    enforces: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Housekeeping:
    """What a runner's housekeeping reads from the store, in one statement."""

    #: The jobs leased to the runner and running now, with their claims' tokens.
    owned: dict[str, int]
    #: Every registered runner (without their running jobs), the reader included if it is.
    runners: list[Runner]
    #: Whether a lease of another runner has expired.
    expired: bool
    #: The earliest next slot of any schedule.
    next_schedule_ms: int | None
    #: Whether a job of the reader's queues may start now, flow control aside.
    startable: bool
    config: dict[str, float]


@dataclass
class Schedule:
    """A periodic job: its template, and its last and next slots."""

    name: str
    cron: str | None
    every_s: float | None
    tz: str | None
    job: dict[str, Any]
    created_at_ms: int
    last_at_ms: int | None
    next_at_ms: int


@dataclass(frozen=True)
class Hook:
    """A job to enqueue when a job (of `queue`, None: of any) reaches one of `events`."""

    name: str
    events: list[str]
    queue: str | None
    job: dict[str, Any]
    created_at_ms: int


@dataclass(frozen=True)
class Firing:
    """One slot of a schedule fired: the job it enqueued, or why it could not."""

    schedule: str
    job_id: str | None
    error: str | None


@dataclass(frozen=True)
class Attempt:
    """One attempt of a job, as its history keeps it."""

    attempt: int
    runner: str | None
    host: str | None
    started_at_ms: int
    finished_at_ms: int | None
    exit_code: int | None
    error: str | None
    duration_ms: int | None
    #: Its claim's token (see Claim); None for an attempt that ended before tokens existed.
    token: int | None = None
    #: What it cost (None: not known, or it has not ended).
    cpu_ms: int | None = None
    max_rss_bytes: int | None = None


@dataclass(frozen=True)
class Output:
    """What one attempt wrote: the kept tail, and how many bytes came before it."""

    attempt: int
    data: bytes
    dropped: int

    def shown(self) -> bytes:
        """The output as `logs` shows it: a marker line first when bytes were dropped."""
        if not self.dropped:
            return self.data
        # A cut inside a UTF-8 character leaves its last bytes (1 to 3 continuation bytes)
        # first: they are dropped too, so the text starts on a whole character.
        # (Four or more are no UTF-8 text: kept as they are.)
        torn = 0
        while torn < min(4, len(self.data)) and 0x80 <= self.data[torn] <= 0xBF:
            torn += 1
        torn = 0 if torn == 4 else torn
        marker = f"[queuectl: {self.dropped + torn} earlier bytes dropped]\n"
        return marker.encode() + self.data[torn:]


#: The duration buckets that recent_durations and totals count in, in ms (migrations 0009 and
#: 0011 hold them too).
DURATION_BOUNDS_MS = (10, 50, 100, 500, 1000, 5000, 10000, 30000, 60000, 300000, 1800000, 3600000)
#: recent_durations' stored bound of a duration longer than every bound.
OVER_ALL_BOUNDS = -2


@dataclass(frozen=True)
class Bucket:
    """Durations that fell at or under `bound_ms` (None: over every bound)."""

    bound_ms: int | None
    count: int
    total_ms: int


@dataclass(frozen=True)
class Totals:
    """The counters that only go up (retention, purge and `reset` of jobs leave them), per
    queue: jobs enqueued, jobs finished per final state, attempts ended per outcome
    (completed, failed, timed_out, lost, cancelled) and their durations' buckets."""

    enqueued: dict[str, int] = field(default_factory=dict)
    finished: dict[str, dict[str, int]] = field(default_factory=dict)
    attempts: dict[str, dict[str, int]] = field(default_factory=dict)
    durations: dict[str, list[Bucket]] = field(default_factory=dict)


@dataclass(frozen=True)
class QueueSettings(Limits):
    """A queue's settings row: paused, its limits (None: none), its jobs running now, and the
    defaults for its jobs' limits."""

    paused: bool
    concurrency: int | None
    rate_jobs: int | None
    rate_ms: int | None
    running: int
    #: Defaults for the queue's jobs that set none of their own (None: none).
    default_timeout: float | None = None
    default_max_retries: int | None = None


@dataclass(frozen=True)
class QueueDefaults:
    """What an attempt of a queue's job takes when the job sets none of its own (None: none)."""

    timeout: float | None
    max_retries: int | None


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a listing, a search or a bulk change takes: those in any of `states` and
    `queues` (None or empty: any), of the batch `batch` (None: any), only held ones if
    `held`, and those whose id starts with `text` or whose command or last error holds it
    (ASCII letters in any case; None: any). A listing leaves the text to search_jobs."""

    states: Sequence[str] | None = None
    queues: Sequence[str] | None = None
    text: str | None = None
    batch: str | None = None
    held: bool = False


#: The filter that takes every job.
EVERY_JOB = JobFilter()


@dataclass(frozen=True)
class Page:
    """Jobs newest first, and the position to continue from (None: nothing more)."""

    jobs: list[Job]
    next_before: int | None


@dataclass
class Ledger:
    """What one runner's claims hold between its exchanges; the runner owns it and passes it to
    each `finish_and_claim` and `release`, so a store may serve several runners."""

    #: The claimed jobs that hold a limited queue's slot or a lock, with which: (queue or None,
    #: lock key or None); settling one frees it, which may call for a wakeup.
    held: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    #: The limited queues a claim counts in one statement (flow_claim_counted), or the limited
    #: batches (flowcontrol.BATCH_SLOT + name, flow_claim_batches), as the last flow claim found
    #: them; None where it could not (no limit, a rate, a lock due).
    counted: list[str] | None = None


@dataclass(frozen=True)
class Token:
    """An API token as listed: its name and role (the token itself is never stored)."""

    name: str
    role: str
    created_at_ms: int


@dataclass(frozen=True)
class AuditEntry:
    """One mutating API request: when, by which token, from where, what it did and touched,
    and the status it was answered with."""

    at_ms: int
    token: str
    client: str
    method: str
    route: str
    target: str
    status: int


@dataclass(frozen=True)
class Batch:
    """A batch: its limit (None: none), its jobs per state, when it was made, its first
    start and last end, and when it last became finished (None while it may still run)."""

    name: str
    concurrency: int | None
    counts: dict[str, int]
    created_at_ms: int
    started_at_ms: int | None
    ended_at_ms: int | None
    finished_at_ms: int | None
