"""Pydantic shapes of the HTTP API: they document the routes in /openapi.json.

Input is validated by queuectl.models (one validator for the CLI, the API and Python), so the
job input schema here is documentation only; responses are checked against these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class DependencyIn(BaseModel):
    """A dependency with its condition: its job completed, finished in any state, or dead."""

    model_config = ConfigDict(extra="forbid")

    id: str
    on: Literal["completed", "finished", "failed"] = "completed"


class JobIn(BaseModel):
    """A job to enqueue; only `command` is required."""

    model_config = ConfigDict(extra="forbid")

    command: str = Field(description="run as /bin/sh -c COMMAND; at most 64 KiB")
    id: str | None = Field(None, description="[A-Za-z0-9._:-]{1,128}; generated if absent")
    queue: str | None = "default"
    priority: int | None = 0
    max_retries: int | None = Field(None, description="default: config max_retries")
    timeout: float | str | None = Field(
        None, description="seconds or 30s, 5m...; 0 = none; null = config job_timeout"
    )
    run_at: str | None = Field(None, description="ISO-8601 earliest start")
    delay: float | str | None = Field(None, description="start after this long (not with run_at)")
    depends_on: list[str | DependencyIn] | None = Field(
        None, description='ids (each to complete), or {"id": ID, "on": CONDITION}'
    )
    no_retry_exit_codes: list[int] | None = None
    unique_key: str | None = None
    cwd: str | None = Field(None, description="working directory; default: the server's")
    env: dict[str, str] | None = None
    lock: str | None = Field(None, description="never runs while a job holding it runs")
    memory: int | str | None = Field(
        None, description="bytes, or 512M, 4G (powers of 1024); killed beyond it"
    )
    cpus: float | None = Field(None, description="CPUs' worth of time, above 0")
    max_procs: int | None = Field(None, description="processes and threads at once")
    batch: str | None = Field(None, description="the batch the job joins (made on first use)")
    after_batch: list[str] | None = Field(
        None, description="batches whose every job must complete first"
    )
    held: bool | None = Field(None, description="enqueue it held: it runs after a release")
    expires: float | str | None = Field(
        None, description="cancelled if not started within this (2h) or by this ISO-8601 time"
    )
    requires: list[str] | None = Field(None, description="tags a runner must all have")
    silence_timeout: float | str | None = Field(
        None, description="kill an attempt silent this long (seconds or 30s, 5m...)"
    )


class JobEdit(BaseModel):
    """The fields of a waiting job to change (PATCH /api/jobs/{id}); a null timeout, lock,
    expires, memory, cpus or max_procs clears it, `env` is merged into the job's, `depends_on`
    replaces its list."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = None
    priority: int | None = None
    queue: str | None = None
    run_at: str | None = None
    delay: float | str | None = None
    env: dict[str, str] | None = None
    timeout: float | str | None = None
    max_retries: int | None = None
    lock: str | None = None
    depends_on: list[str] | None = None
    expires: float | str | None = None
    memory: int | str | None = Field(None, description="bytes, or 512M, 4G (powers of 1024)")
    cpus: float | None = None
    max_procs: int | None = None


#: The request body of POST /api/jobs: one job object or an array of them.
JOBS_IN_SCHEMA: dict[str, Any] = {
    "anyOf": [
        JobIn.model_json_schema(),
        {"type": "array", "items": JobIn.model_json_schema()},
    ]
}


class ProgressOut(BaseModel):
    """The running attempt's last progress report; `eta_s` from its rate so far."""

    done: float
    total: float | None
    percent: float | None
    message: str | None
    eta_s: float | None


class JobOut(BaseModel):
    """A job, as every `--json` and the API show it."""

    id: str
    command: str
    state: str
    queue: str
    priority: int
    attempts: int
    max_retries: int
    timeout: float | None
    run_at: str
    depends_on: list[str]
    no_retry_exit_codes: list[int]
    unique_key: str | None
    cwd: str
    env: dict[str, str]
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None
    exit_code: int | None
    last_error: str | None
    duration_ms: int | None
    lock: str | None = None
    memory: int | None = None
    cpus: float | None = None
    max_procs: int | None = None
    batch: str | None = None
    made_by: str | None = None  # hook jobs only: "hook NAME: EVENT of JOB"
    hook: str | None = None  # hook jobs only: the hook's name
    held: bool = False  # not claimed until released
    expires_at: str | None = None  # cancelled if not started by then
    edits: list[dict[str, Any]] = []  # who changed it while it waited, when, which fields
    requires: list[str] = []
    silence_timeout: float | None = None
    progress: ProgressOut | None = None


class AttemptOut(BaseModel):
    """One attempt of a job; a running one has `finished_at` null."""

    attempt: int
    runner: str | None
    host: str | None
    started_at: str
    finished_at: str | None
    exit_code: int | None
    error: str | None
    duration_ms: int | None
    cpu_ms: int | None = None
    max_rss_bytes: int | None = None


class JobDetail(JobOut):
    """A job with every attempt, oldest first."""

    history: list[AttemptOut]


class JobPage(BaseModel):
    """A page of jobs, newest first; pass `next_cursor` as `cursor` for the next page."""

    jobs: list[JobOut]
    next_cursor: str | None


class RunnerOut(BaseModel):
    id: str
    host: str
    pid: int
    workers: int
    queues: list[str] | None
    started_at: str
    heartbeat_at: str
    running: list[str]
    stopping: bool  # asked to stop: it finishes its running jobs and takes no new one
    enforces: list[str] = []  # the limits it enforces; it takes no job with another
    tags: list[str] = []


class RunningProgressOut(BaseModel):
    """A running job that reported progress, as `status` lists it."""

    id: str
    queue: str
    progress: ProgressOut


class StatusOut(BaseModel):
    """The same shape as `queuectl status --json`."""

    counts: dict[str, int]
    queues: dict[str, dict[str, int]]
    runners: list[RunnerOut]
    done_last_minute: int
    since: SinceOut | None = Field(None, description="only with ?since=DURATION")
    progress: list[RunningProgressOut] = []


class RateOut(BaseModel):
    jobs: int
    seconds: float


class QueueDefaultsOut(BaseModel):
    """What a queue's jobs that set none of their own take (null: no default)."""

    timeout: float | None
    max_retries: int | None


class QueueOut(BaseModel):
    """A queue as `queue list --json` shows it."""

    paused: bool
    concurrency: int | None = None
    rate: RateOut | None = None
    counts: dict[str, int]
    memory: int | None = None  # defaults of its jobs' limits
    cpus: float | None = None
    max_procs: int | None = None
    defaults: QueueDefaultsOut | None = None  # only a queue with defaults for its jobs


class QueueLimitsIn(BaseModel):
    """A queue's limits to set; a key left out keeps its limit, null removes it."""

    model_config = ConfigDict(extra="forbid")

    concurrency: Any = Field(None, description="at most N jobs running at once; null: no limit")
    rate: Any = Field(
        None, description='"N/DURATION" (10/1m) or {"jobs": N, "seconds": S}; null: no limit'
    )
    memory: Any = Field(None, description="its jobs' memory unless they give theirs; null: none")
    cpus: Any = Field(None, description="its jobs' CPUs unless they give theirs; null: none")
    max_procs: Any = Field(None, description="its jobs' process limit; null: none")
    timeout: Any = Field(None, description="default timeout of its jobs; null: none")
    max_retries: Any = Field(None, description="default max_retries of its jobs; null: none")


class QueueState(BaseModel):
    queue: str
    paused: bool


class DlqRetryIn(BaseModel):
    """Either `ids` or `all: true`."""

    ids: list[str] | None = None
    all: bool = False


class Retried(BaseModel):
    retried: list[str]


class Purged(BaseModel):
    purged: int


class ConfigValueIn(BaseModel):
    value: Any = Field(description="a number, or a duration such as 30s")


class ConfigValue(BaseModel):
    key: str
    value: int | float


class Health(BaseModel):
    status: str
    kind: str
    schema_version: int
    version: str


class ThroughputBucket(BaseModel):
    start: str = Field(description="start of the minute, ISO-8601 UTC")
    completed: int
    failed: int = Field(description="attempts that ended failed or dead")


class Throughput(BaseModel):
    """Jobs finished per minute over the last `minutes` minutes, oldest minute first."""

    bucket_seconds: int
    buckets: list[ThroughputBucket]
    sampled: int = Field(description="the completed jobs and failed attempts counted")


class ScheduleIn(BaseModel):
    """A periodic job: exactly one of `cron` (5 fields, UTC unless `tz`) or `every`."""

    model_config = ConfigDict(extra="forbid")

    name: str
    cron: str | None = None
    every: float | str | None = Field(None, description="seconds or 30s, 5m, 2h...")
    tz: str | None = None
    job: dict[str, Any] = Field(description="the job to enqueue at each slot (no id)")


class ScheduleOut(BaseModel):
    """A schedule as `queuectl schedule list --json` shows it."""

    name: str
    cron: str | None
    every: float | None
    tz: str | None
    job: dict[str, Any]
    last_at: str | None
    next_at: str


class Removed(BaseModel):
    removed: str


class ErrorOut(BaseModel):
    error: str


# -- hooks and recent counts


class SinceOut(BaseModel):
    """Jobs that finished in the last `seconds`, by state."""

    seconds: int | float
    completed: int
    dead: int
    cancelled: int
    cpu_seconds: float = 0.0  # of the attempts that ended in the window, by the minute


class HookIn(BaseModel):
    """When a job (of `queue`, null: of any) reaches an event of `on`, `job` is enqueued."""

    model_config = ConfigDict(extra="forbid")

    name: str
    on: list[str] | str = Field(description="completed, failed, dead, cancelled")
    queue: str | None = None
    job: dict[str, Any] = Field(description="the hook job (no id, depends_on or run_at)")


class HookOut(BaseModel):
    """A hook as `queuectl hook list --json` shows it."""

    name: str
    on: list[str]
    queue: str | None
    job: dict[str, Any]
    created_at: str


# -- acting on every job a filter matches


class BulkFilterIn(BaseModel):
    """Which jobs: any of `state`, any of `queue`, those of `batch`, only `held` ones, and
    `search` (as GET /api/jobs's)."""

    model_config = ConfigDict(extra="forbid")

    state: list[str] | None = None
    queue: list[str] | None = None
    batch: str | None = None
    held: bool = False
    search: str | None = Field(default=None, max_length=500)

    @field_validator("search")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        # SQLite's LIKE ends a pattern at a NUL byte: "\0" would match every job, and a bulk
        # action act on all of them without the `all: true` an empty filter needs.
        if value is not None and "\x00" in value:
            raise ValueError("must not contain a NUL byte")
        return value


class BulkIn(BaseModel):
    """An action on every job the filter matches; an empty filter needs `all: true`."""

    model_config = ConfigDict(extra="forbid")

    filter: BulkFilterIn = Field(default_factory=BulkFilterIn)
    action: Literal["cancel", "retry", "hold", "release", "delete"]
    all: bool = False
    dry_run: bool = Field(False, description="only count the jobs matched; change nothing")


class BulkOut(BaseModel):
    """Jobs matched, and of them those changed (a state that forbids the action: matched,
    not changed); a dry run has no `changed`."""

    matched: int
    changed: int | None = None


# -- who may do what


class WhoAmI(BaseModel):
    """The token of the request: its name ("(serve)" for the token given to serve) and role."""

    name: str
    role: str = Field(description="read, operate or admin")


class AuditOut(BaseModel):
    """A mutating request: when, which token, from where, what it did and touched."""

    at: str
    token: str
    client: str
    method: str
    route: str
    target: str
    status: int


class BatchCounts(BaseModel):
    pending: int
    processing: int
    completed: int
    failed: int
    dead: int
    cancelled: int


class BatchOut(BaseModel):
    """A batch's progress, as `batch list --json` shows it."""

    name: str
    total: int
    done: int
    counts: BatchCounts
    finished: bool = Field(description="every job completed, dead or cancelled")
    completed: bool = Field(description="every job completed")
    concurrency: int | None = Field(description="at most this many of its jobs processing")
    created_at: str
    first_start: str | None
    last_end: str | None
    eta_s: float | None = Field(description="seconds left at its pace so far, while it runs")


class BatchDetail(BatchOut):
    jobs: list[JobOut] = Field(description="its newest jobs, at most `limit`")


class BatchCancelled(BaseModel):
    cancelled: int
