"""The job: its states, its JSON shape, and validated input for a new job."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from queuectl.durations import ms_to_iso, parse_duration, parse_iso
from queuectl.errors import InvalidInputError

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
DEAD = "dead"
CANCELLED = "cancelled"

STATES = (PENDING, PROCESSING, COMPLETED, FAILED, DEAD, CANCELLED)
#: States a job leaves only by a person's action (`requeue`, `dlq retry`) or never.
FINISHED_STATES = frozenset({COMPLETED, DEAD, CANCELLED})
#: States that may still run; a unique_key is held while a job is in one of them.
ACTIVE_STATES = frozenset({PENDING, PROCESSING, FAILED})
CANCELLABLE_STATES = ACTIVE_STATES

ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_COMMAND_BYTES = 64 * 1024
MAX_PRIORITY = 2**31 - 1
# Both stores index unique_key; PostgreSQL refuses a btree entry over about 2,700 bytes, so the
# limit is in bytes, the same on SQLite, and checked before any store sees the key.
MAX_UNIQUE_KEY_BYTES = 1024

NEW_JOB_FIELDS = frozenset(
    {
        "id",
        "command",
        "queue",
        "priority",
        "max_retries",
        "timeout",
        "run_at",
        "delay",
        "depends_on",
        "no_retry_exit_codes",
        "unique_key",
        "cwd",
        "env",
        "lock",
        "memory",
        "cpus",
        "max_procs",
        "batch",
        "after_batch",
        "held",
        "expires",
        "requires",
        "silence_timeout",
    }
)
#: A job's limits at most: what PostgreSQL's bigint holds, far more CPUs and processes than any
#: host has (the kernel's pid limit).
MAX_MEMORY = 2**62
MAX_CPUS = 65536.0
MAX_PROCS = 4_194_304
#: The limits a job can have, in the order they are named; a runner says which it enforces.
LIMITS = ("memory", "cpus", "max_procs")
SIZE = r"\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(?:i?B)?|B)?\s*"  # compiled when used: not on enqueue
SIZE_UNITS = {"": 0, "K": 1, "M": 2, "G": 3, "T": 4}


#: What a document nested deeper than the parser can recurse is refused as.
TOO_DEEP = "nested too deeply"
_scan_json = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # not in typeshed


def parse_json(text: str | bytes) -> Any:
    """json.loads of a user's input, the one parser of the CLI's and the API's JSON: a document
    nested too deeply for the parser is a JSONDecodeError like any other invalid JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError(TOO_DEEP, text if isinstance(text, str) else "", 0) from None


def scan_json(text: str, at: int) -> tuple[Any, int]:
    """The JSON value starting exactly at `at`, and where it ends; StopIteration when no value
    starts there. Nesting too deep is a JSONDecodeError, as in parse_json."""
    try:
        value, end = _scan_json(text, at)
    except RecursionError:
        raise json.JSONDecodeError(TOO_DEEP, text, at) from None
    return value, end


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, tz=UTC)


@dataclass(slots=True)
class Job:
    """One job as stored. Instants are epoch milliseconds; `to_dict` gives its JSON."""

    id: str
    command: str
    state: str
    queue: str
    priority: int
    attempts: int
    max_retries: int
    timeout: float | None
    run_at_ms: int
    depends_on: list[str]
    no_retry_exit_codes: list[int]
    unique_key: str | None
    cwd: str
    env: dict[str, str]
    created_at_ms: int
    updated_at_ms: int
    started_at_ms: int | None = None
    finished_at_ms: int | None = None
    exit_code: int | None = None
    last_error: str | None = None
    duration_ms: int | None = None
    lease_owner: str | None = None
    lease_expires_at_ms: int | None = None
    lock: str | None = None
    made_by: str | None = None  # what made a hook job: "hook NAME: EVENT of JOB"
    memory: int | None = None  # bytes
    cpus: float | None = None
    max_procs: int | None = None
    batch: str | None = None
    held: bool = False  # not claimed until released
    expires_at_ms: int | None = None  # cancelled if not started by then
    #: Changes made to the job while it waited: {"at", "by", "fields"} each, oldest first.
    edits: list[dict[str, Any]] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)  # tags a runner must have to claim it
    silence_timeout: float | None = None
    #: The current attempt's last progress report as stored (see progress_dict), or None.
    progress: dict[str, Any] | None = None

    @property
    def run_at(self) -> datetime:
        return _dt(self.run_at_ms)  # type: ignore[return-value]

    @property
    def created_at(self) -> datetime:
        return _dt(self.created_at_ms)  # type: ignore[return-value]

    @property
    def started_at(self) -> datetime | None:
        return _dt(self.started_at_ms)

    @property
    def finished_at(self) -> datetime | None:
        return _dt(self.finished_at_ms)

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STATES

    def to_dict(self) -> dict[str, Any]:
        """The job's JSON object, keys in the documented order (docs/json.md)."""
        return {
            "id": self.id,
            "command": self.command,
            "state": self.state,
            "queue": self.queue,
            "priority": self.priority,
            "attempts": self.attempts,
            "max_retries": self.max_retries,
            "timeout": self.timeout,
            "run_at": ms_to_iso(self.run_at_ms),
            "depends_on": list(self.depends_on),
            "no_retry_exit_codes": list(self.no_retry_exit_codes),
            "unique_key": self.unique_key,
            "cwd": self.cwd,
            "env": dict(self.env),
            "created_at": ms_to_iso(self.created_at_ms),
            "updated_at": ms_to_iso(self.updated_at_ms),
            "started_at": ms_to_iso(self.started_at_ms),
            "finished_at": ms_to_iso(self.finished_at_ms),
            "exit_code": self.exit_code,
            "last_error": self.last_error,
            "duration_ms": self.duration_ms,
            "lock": self.lock,
            "memory": self.memory,
            "cpus": self.cpus,
            "max_procs": self.max_procs,
            "batch": self.batch,
            "held": self.held,
            "expires_at": ms_to_iso(self.expires_at_ms),
            "edits": [dict(edit) for edit in self.edits],
            "requires": list(self.requires),
            "silence_timeout": self.silence_timeout,
            "progress": self.progress_dict(),
            # Only hook jobs carry it, so every other job's JSON keeps its documented shape.
            **({"made_by": self.made_by, "hook": self.hook} if self.made_by is not None else {}),
        }

    def progress_dict(self) -> dict[str, Any] | None:
        """The JSON of the current attempt's last progress report (None before any), with
        the ETA its rate since the attempt started gives."""
        report = self.progress
        if report is None:
            return None
        done, total = report["done"], report["total"]
        percent = round(100 * done / total, 1) if total else None
        eta_s = None
        started = self.started_at_ms
        if started is not None and total and 0 < done < total:
            elapsed_s = max(0, report["at"] - started) / 1000
            eta_s = round(elapsed_s * (total - done) / done, 1)
        elif total and done >= total:
            eta_s = 0.0
        from queuectl.progress import number  # its parsers are for runners, not enqueues

        return {
            "done": number(done),
            "total": number(total),
            "percent": percent,
            "message": report.get("message"),
            "eta_s": eta_s,
        }

    @property
    def hook(self) -> str | None:
        """The name of the hook that made this job, or None for a job enqueued by someone."""
        if self.made_by is None or not self.made_by.startswith("hook "):
            return None
        return self.made_by[len("hook ") :].split(":", 1)[0]


@dataclass(slots=True)
class NewJob:
    """A validated job to enqueue. `max_retries` None means the configured default."""

    command: str
    id: str | None = None
    queue: str = "default"
    priority: int = 0
    max_retries: int | None = None
    timeout: float | None = None
    run_at_ms: int | None = None
    delay_s: float | None = None
    depends_on: list[str] = field(default_factory=list)
    no_retry_exit_codes: list[int] = field(default_factory=list)
    unique_key: str | None = None
    cwd: str = ""
    env: dict[str, str] = field(default_factory=dict)
    lock: str | None = None
    memory: int | None = None
    cpus: float | None = None
    max_procs: int | None = None
    batch: str | None = None
    #: Batches whose every job must complete before this job runs.
    after_batch: list[str] = field(default_factory=list)
    #: Dependencies on another outcome than completion (id: "finished" or "failed").
    conditions: dict[str, str] = field(default_factory=dict)
    #: The concurrency limit this job's enqueue sets on its batch (an array's `%N`).
    batch_limit: int | None = None
    held: bool = False
    expires_at_ms: int | None = None
    expires_in_s: float | None = None  # from the enqueue, when given as a duration
    requires: list[str] = field(default_factory=list)
    silence_timeout: float | None = None

    def first_run_at(self, now_ms: int) -> int:
        """When the job may first start: its run_at, else now plus its delay."""
        if self.run_at_ms is not None:
            return self.run_at_ms
        return now_ms + round((self.delay_s or 0) * 1000)

    def expires_at(self, now_ms: int) -> int | None:
        """When the job is cancelled if it has not started by then (None: never). An instant
        already past is refused, as a duration of zero is: such a job could never run."""
        if self.expires_in_s is not None:
            return now_ms + round(self.expires_in_s * 1000)
        if self.expires_at_ms is not None and self.expires_at_ms <= now_ms:
            raise InvalidInputError(f"expires: {ms_to_iso(self.expires_at_ms)} has passed")
        return self.expires_at_ms


def _int(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            value = int(value)
        else:
            shown = repr(value) if isinstance(value, str) else json.dumps(value, default=str)
            raise InvalidInputError(f"{what}: expected an integer, got {shown}")
    if not low <= value <= high:
        raise InvalidInputError(f"{what}: must be between {low} and {high}, got {value}")
    return value


def parse_memory(value: object, what: str = "memory") -> int:
    """Bytes from 536870912 or "512M" (K, M, G, T: powers of 1024; "512MiB" too)."""
    if isinstance(value, int) and not isinstance(value, bool):
        count = value
    elif isinstance(value, str) and (match := re.fullmatch(SIZE, value, re.IGNORECASE)):
        unit = SIZE_UNITS[(match.group(2) or "").upper()]
        count = round(float(match.group(1)) * 1024**unit)
    else:
        raise InvalidInputError(
            f"{what}: expected bytes or a size such as 512M or 4G, got {json.dumps(value)}"
        )
    if not 1 <= count <= MAX_MEMORY:
        raise InvalidInputError(f"{what}: must be between 1 byte and 4 EiB, got {value}")
    return count


def parse_cpus(value: object, what: str = "cpus") -> float:
    """A number of CPUs, more than 0 (1.5: one and a half CPUs' time)."""
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or not 0 < number <= MAX_CPUS:  # also NaN
        raise InvalidInputError(
            f"{what}: expected a number of CPUs above 0 (1.5, 4), got {json.dumps(value)}"
        )
    return number


def parse_max_procs(value: object, what: str = "max_procs") -> int:
    return _int(value, what, 1, MAX_PROCS)


def limits_mask(names: list[str] | tuple[str, ...]) -> int:
    """The limits named, as the claim's bits (memory 1, cpus 2, max_procs 4)."""
    return sum(1 << LIMITS.index(name) for name in set(names))


ALL_LIMITS = limits_mask(LIMITS)


def validate_id(value: object, what: str = "id") -> str:
    """A job id (or queue name) matching `[A-Za-z0-9._:-]{1,128}`."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidInputError(f"{what}: {value!r} is not valid (1 to 128 of A-Z a-z 0-9 . _ : -)")
    return value


def name_list(value: str | Sequence[str] | None) -> list[str] | None:
    """One name or several as a list; None (any) for None or none given."""
    if value is None or isinstance(value, str):
        return None if value is None else [value]
    return list(value) or None


def parse_states(value: str | Sequence[str] | None) -> list[str] | None:
    """The states a filter names (`running` is processing, as the dashboard says); None: any."""
    states = [PROCESSING if name == "running" else name for name in name_list(value) or ()]
    for name in states:
        if name not in STATES:
            raise InvalidInputError(f"state: {name!r} is not one of {', '.join(STATES)}")
    return states or None


def _is_text(value: object) -> TypeGuard[str]:
    """Whether `value` is a str of UTF-8 text (undecodable bytes of argv become surrogates)."""
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text_key(value: object, what: str) -> str:
    """A unique_key or lock: non-empty UTF-8 text of at most MAX_UNIQUE_KEY_BYTES bytes, not
    only spaces (an unset variable in `--lock "$HOST "` would make one lock of every job)."""
    if not _is_text(value) or not value or "\x00" in value:
        raise InvalidInputError(f"{what}: must be a non-empty string of UTF-8 text")
    if value.isspace():
        raise InvalidInputError(f"{what}: must not be only spaces")
    if len(value.encode("utf-8")) > MAX_UNIQUE_KEY_BYTES:
        raise InvalidInputError(f"{what}: longer than {MAX_UNIQUE_KEY_BYTES} bytes (UTF-8)")
    return value


def validate_command(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError("command: must be a non-empty string")
    if "\x00" in value:
        raise InvalidInputError("command: must not contain a NUL byte")
    if value.isascii():  # a flag of the string, no scan: UTF-8 text of len(value) bytes
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInputError("command: must be UTF-8 text") from None
    if size > MAX_COMMAND_BYTES:
        raise InvalidInputError(f"command: longer than {MAX_COMMAND_BYTES} bytes")
    return value


#: What a dependency may wait for: its job completed, finished in any state, or ended dead.
CONDITIONS = ("completed", "finished", "failed")


def condition_met(condition: str, state: str) -> bool | None:
    """Whether a dependency in `state` meets `condition`: True, False (it never will: its
    dependant is cancelled), or None (not yet: it has not finished)."""
    if state not in FINISHED_STATES:
        return None
    if condition == "finished":
        return True
    if condition == "failed":
        return state == DEAD
    return state == COMPLETED


def _dependency(value: object) -> tuple[str, str]:
    """A depends_on entry: an id (completed), or {"id": ID, "on": CONDITION}."""
    if isinstance(value, dict):
        if not {"id", "on"}.issuperset(value) or "id" not in value:
            raise InvalidInputError('depends_on: an entry is an id or {"id": ID, "on": CONDITION}')
        on = value.get("on", COMPLETED)
        if on not in CONDITIONS:
            raise InvalidInputError(
                f"depends_on: on must be one of {', '.join(CONDITIONS)}, got {on!r}"
            )
        return validate_id(value["id"], "depends_on"), str(on)
    return validate_id(value, "depends_on"), COMPLETED


def new_job(data: dict[str, Any], where: str = "", cwd: str | None = None) -> NewJob:
    """Validate one job object (JSON from the CLI, the API or Python keywords).

    `cwd` is the directory a job without one runs in (default: the current one); a batch
    passes it once rather than asking the OS for every job.
    """
    try:
        return _new_job(data, cwd)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}" if where else str(exc)) from None


def _new_job(data: dict[str, Any], default_cwd: str | None = None) -> NewJob:
    if not isinstance(data, dict):
        raise InvalidInputError(f"a job must be a JSON object, got {type(data).__name__}")
    if not NEW_JOB_FIELDS.issuperset(data):
        unknown = sorted(set(data) - NEW_JOB_FIELDS)
        raise InvalidInputError(f"unknown field {unknown[0]!r}")
    if "command" not in data:
        raise InvalidInputError("command: missing")
    job = NewJob(command=validate_command(data["command"]))
    if len(data) == 1:  # the command alone, as most jobs of a bulk enqueue come
        job.cwd = default_cwd or os.getcwd()
        return job
    if data.get("id") is not None:
        job.id = validate_id(data["id"])
    if data.get("queue") is not None:
        job.queue = validate_id(data["queue"], "queue")
    if data.get("priority") is not None:
        job.priority = _int(data["priority"], "priority", -MAX_PRIORITY, MAX_PRIORITY)
    if data.get("max_retries") is not None:
        job.max_retries = _int(data["max_retries"], "max_retries", 0, 100)
    if data.get("timeout") is not None:
        job.timeout = parse_duration(data["timeout"], "timeout")
    if data.get("run_at") is not None and data.get("delay") is not None:
        raise InvalidInputError("give run_at or delay, not both")
    if data.get("run_at") is not None:
        job.run_at_ms = parse_iso(data["run_at"], "run_at")
    if data.get("delay") is not None:
        job.delay_s = parse_duration(data["delay"], "delay")
    if data.get("depends_on") is not None:
        ids: list[str] = []
        for dep in _one_or_list(data["depends_on"], "depends_on", "job ids"):
            dep_id, on = _dependency(dep)
            ids.append(dep_id)
            if on != COMPLETED:
                job.conditions[dep_id] = on
            else:
                job.conditions.pop(dep_id, None)
        job.depends_on = list(dict.fromkeys(ids))
        if job.id is not None and job.id in job.depends_on:
            raise InvalidInputError("depends_on: a job cannot depend on itself")
    if data.get("no_retry_exit_codes") is not None:
        codes = data["no_retry_exit_codes"]
        if not isinstance(codes, list):
            raise InvalidInputError("no_retry_exit_codes: expected a list of integers")
        job.no_retry_exit_codes = sorted({_int(c, "no_retry_exit_codes", 0, 255) for c in codes})
    if data.get("unique_key") is not None:
        job.unique_key = _text_key(data["unique_key"], "unique_key")
    if data.get("lock") is not None:
        job.lock = _text_key(data["lock"], "lock")
    if data.get("batch") is not None:
        job.batch = validate_id(data["batch"], "batch")
    if data.get("after_batch") is not None:
        names = _one_or_list(data["after_batch"], "after_batch", "batch names")
        job.after_batch = list(dict.fromkeys(validate_id(n, "after_batch") for n in names))
    if data.get("held") is not None:
        if not isinstance(data["held"], bool):
            raise InvalidInputError("held: expected true or false")
        job.held = data["held"]
    if data.get("expires") is not None:
        job.expires_at_ms, job.expires_in_s = parse_deadline(data["expires"], "expires")
    cwd = data.get("cwd")
    if cwd is not None and (not _is_text(cwd) or not cwd or "\x00" in cwd):
        raise InvalidInputError("cwd: must be a non-empty path")
    job.cwd = os.path.abspath(cwd) if cwd else (default_cwd or os.getcwd())
    if data.get("env") is not None:
        env = data["env"]
        if not isinstance(env, dict):
            raise InvalidInputError("env: expected an object of NAME: value")
        for name, value in env.items():
            if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
                raise InvalidInputError(f"env: {name!r} is not a valid variable name")
            if not _is_text(value) or "\x00" in value:
                raise InvalidInputError(f"env: the value of {name} must be a string of UTF-8 text")
        job.env = dict(env)
    if data.get("memory") is not None:
        job.memory = parse_memory(data["memory"])
    if data.get("cpus") is not None:
        job.cpus = parse_cpus(data["cpus"])
    if data.get("max_procs") is not None:
        job.max_procs = parse_max_procs(data["max_procs"])
    if data.get("requires") is not None:
        tags = _one_or_list(data["requires"], "requires", "tags")
        job.requires = sorted({validate_tag(t, "requires") for t in tags})
    if data.get("silence_timeout") is not None:
        job.silence_timeout = parse_duration(data["silence_timeout"], "silence_timeout")
        if job.silence_timeout <= 0:
            raise InvalidInputError("silence_timeout: must be more than 0")
    return job


def _one_or_list(value: object, what: str, items: str) -> list[Any]:
    """A list field that also takes its one item alone (a string)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list):
        raise InvalidInputError(f"{what}: expected a list of {items}")
    return value


def parse_deadline(value: object, what: str) -> tuple[int | None, float | None]:
    """A deadline given as a duration from now (`2h`: (None, 7200.0)) or an ISO-8601 instant
    (`(ms, None)`)."""
    if isinstance(value, str) and ("T" in value or value.count("-") >= 2):
        return parse_iso(value, what), None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidInputError(f"{what}: expected a duration (2h) or an ISO-8601 time")
    seconds = parse_duration(value, what)
    if seconds <= 0:
        raise InvalidInputError(f"{what}: must be later than now")
    return None, seconds


def validate_search(text: str) -> str:
    """A search's text: any but a NUL byte, at which SQLite's LIKE ends its pattern (a search
    for it would match every job, and a bulk change by it act on every job)."""
    if "\x00" in text:
        raise InvalidInputError("search: must not contain a NUL byte")
    return text


def validate_tag(value: object, what: str = "tag") -> str:
    """A runner's tag, or a job's required one: as an id, `[A-Za-z0-9._:-]{1,128}`."""
    return validate_id(value, what)
