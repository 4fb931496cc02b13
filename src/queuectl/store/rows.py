"""The rows the store writes and reads, each defined once, and their mapping to records.

`JobRow` is the job's row as enqueue inserts it: its fields are the INSERT's columns, in order
(the SQL files name them as `{insert_columns}` and `{insert_values}`), and those typed `Json`
are the JSON columns. A new job field is a field here, a migration, and what reads it back.
"""

from __future__ import annotations

import os
import time
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from queuectl.models import LIMITS, Job, NewJob
from queuectl.store.records import Claim, Hook, QueueDefaults, Runner, Schedule

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: A JSON column's value as a query parameter (the dialect's encoding).
Json = Any
R = TypeVar("R", Runner, Schedule, Hook)


class JobRow(NamedTuple):
    """A job's row as inserted; the field names are the column names."""

    id: str
    command: str
    state: str
    queue: str
    priority: int
    max_retries: int
    timeout: float | None
    run_at: int
    depends_on: Json
    waiting_on: int
    no_retry_exit_codes: Json
    unique_key: str | None
    cwd: str
    env: Json
    created_at: int
    updated_at: int
    finished_at: int | None
    last_error: str | None
    scheduled: bool
    lock_key: str | None
    memory: int | None
    cpus: float | None
    max_procs: int | None
    batch: str | None
    batch_limited: bool
    held: bool
    expires_at: int | None
    max_retries_set: bool
    requires: Any  # the dialect's array of the required tags; NULL when none
    silence_timeout: float | None


#: The INSERT's columns, in the order of a JobRow.
INSERT_COLUMNS: tuple[str, ...] = JobRow._fields
#: The columns a JobRow holds as JSON (the annotation names the type, `from __future__`).
JSON_COLUMNS: tuple[str, ...] = tuple(
    name for name, kind in JobRow.__annotations__.items() if kind == "Json"
)
#: The columns in which the rows of a bulk enqueue usually differ; the rest are often shared.
PER_JOB_COLUMNS = ("id", "command")
assert INSERT_COLUMNS[: len(PER_JOB_COLUMNS)] == PER_JOB_COLUMNS  # they lead every row


def insert_blocks(placeholder: str) -> dict[str, str]:
    """The SQL the job's field list writes for a dialect: blocks that named queries include."""
    return {
        "insert_columns": ", ".join(INSERT_COLUMNS),
        "insert_values": ", ".join([placeholder] * len(INSERT_COLUMNS)),
        "shared_values": ", ".join([placeholder] * (len(INSERT_COLUMNS) - len(PER_JOB_COLUMNS))),
    }


def inserted_job(job: NewJob, row: JobRow) -> Job:
    """The job of a plain batch (no dependency) just inserted as `row`."""
    # Positional in Job's field order, and no copy of an empty field: a bulk enqueue builds one
    # Job per row.
    return Job(
        row.id,
        row.command,
        row.state,
        row.queue,
        row.priority,
        0,  # attempts
        row.max_retries,
        row.timeout,
        row.run_at,
        [],  # depends_on
        list(job.no_retry_exit_codes) if job.no_retry_exit_codes else [],
        row.unique_key,
        row.cwd,
        dict(job.env) if job.env else {},
        row.created_at,
        row.updated_at,
        None,  # started_at_ms
        row.finished_at,
        None,  # exit_code
        row.last_error,
        None,  # duration_ms
        None,  # lease_owner
        None,  # lease_expires_at_ms
        row.lock_key,
        memory=row.memory,
        cpus=row.cpus,
        max_procs=row.max_procs,
        batch=row.batch,
        held=row.held,
        expires_at_ms=row.expires_at,
        requires=list(job.requires) if job.requires else [],
        silence_timeout=row.silence_timeout,
    )


def job(row: Any, from_json: Callable[[Any], Any]) -> Job:
    """The one mapping of a `job_columns` row to a Job."""
    return Job(
        id=row["id"],
        command=row["command"],
        state=row["state"],
        queue=row["queue"],
        priority=row["priority"],
        attempts=row["attempts"],
        max_retries=row["max_retries"],
        timeout=row["timeout"],
        run_at_ms=row["run_at"],
        depends_on=list(from_json(row["depends_on"])),
        no_retry_exit_codes=list(from_json(row["no_retry_exit_codes"])),
        unique_key=row["unique_key"],
        cwd=row["cwd"],
        env=dict(from_json(row["env"])),
        created_at_ms=row["created_at"],
        updated_at_ms=row["updated_at"],
        started_at_ms=row["started_at"],
        finished_at_ms=row["finished_at"],
        exit_code=row["exit_code"],
        last_error=row["last_error"],
        duration_ms=row["duration_ms"],
        lease_owner=row["lease_owner"],
        lease_expires_at_ms=row["lease_expires_at"],
        lock=row["lock_key"],
        made_by=row["made_by"],
        memory=row["memory"],
        cpus=row["cpus"],
        max_procs=row["max_procs"],
        batch=row["batch"],
        held=bool(row["held"]),
        expires_at_ms=row["expires_at"],
        edits=list(from_json(row["edits"])) if row["edits"] is not None else [],
        requires=[] if row["requires"] is None else list(from_json(row["requires"])),
        silence_timeout=row["silence_timeout"],
        progress=current_progress(row, from_json),
    )


def current_progress(row: Any, from_json: Callable[[Any], Any]) -> dict[str, Any] | None:
    """The job's last progress report, if its current attempt made it (a retry starts
    with none)."""
    if row["progress"] is None:
        return None
    report = dict(from_json(row["progress"]))
    return report if report.get("token") == row["token"] else None


def claims(
    rows: Sequence[Any],
    from_json: Callable[[Any], Any],
    defaults: Mapping[str, QueueDefaults] | None = None,
) -> list[Claim]:
    """Claimed rows as Claims, in claim order; a job that sets no timeout or max_retries of
    its own takes its queue's `defaults`, if the queue has them."""
    rows = sorted(rows, key=lambda r: (-r["priority"], r["run_at"], r["seq"]))
    found = [
        Claim(
            r["id"],
            r["attempts"],
            r["token"],
            r["command"],
            r["cwd"],
            dict(from_json(r["env"])),
            r["timeout"],
            r["queue"],
            r["priority"],
            r["max_retries"],
            list(from_json(r["no_retry_exit_codes"])),
            r["silence_timeout"],
            **_limits(r, from_json),
        )
        for r in rows
    ]
    if defaults:
        for i, r in enumerate(rows):
            default = defaults.get(r["queue"])
            if default is None:
                continue
            timeout, max_retries = found[i].timeout, found[i].max_retries
            if timeout is None:
                timeout = default.timeout
            if not r["max_retries_set"] and default.max_retries is not None:
                max_retries = default.max_retries
            found[i] = replace(found[i], timeout=timeout, max_retries=max_retries)
    return found


def _limits(row: Any, from_json: Callable[[Any], Any]) -> dict[str, Any]:
    """A claimed job's limits: its own, else its queue's defaults (`queue_limits`, a JSON
    array, only for a queue that has some)."""
    own = {name: row[name] for name in LIMITS}
    if row["queue_limits"] is None:
        return own
    defaults = from_json(row["queue_limits"])
    return {
        name: theirs if own[name] is None else own[name]
        for name, theirs in zip(LIMITS, defaults, strict=True)
    }


def runner(
    row: Any,
    queues: list[str] | None,
    running: list[str],
    enforces: list[str] | None = None,
    tags: list[str] | None = None,
) -> Runner:
    """The one mapping of a `runners` row (or its JSON object) to a Runner."""
    return _record(
        Runner,
        row,
        queues=None if queues is None else list(queues),
        stop_requested=bool(row["stop_requested"]),
        running=running,
        enforces=list(enforces or []),
        tags=list(tags or []),
    )


def schedule(row: Any, from_json: Callable[[Any], Any]) -> Schedule:
    return _record(Schedule, row, job=dict(from_json(row["job"])))


def hook(row: Any, from_json: Callable[[Any], Any]) -> Hook:
    return _record(
        Hook, row, events=list(from_json(row["events"])), job=dict(from_json(row["job"]))
    )


def _record(cls: type[R], row: Any, **given: Any) -> R:
    """A record of the fields `given`, the others read from the columns of `row` of the same
    name (an instant `X_at_ms` from the column `X_at`)."""
    for f in fields(cls):
        if f.name not in given:
            given[f.name] = row[f.name.removesuffix("_ms") if f.name.endswith("_at_ms") else f.name]
    return cls(**given)


def new_id() -> str:
    return new_ids(1)[0]


def new_ids(n: int) -> list[str]:
    """N new ids in ascending order: the time in milliseconds (11 hex digits), then a random
     52-bit start counted up. A batch's ids go in at one end of the id index, not all over it
    ; ids from two processes collide only when their batches start
     within n of each other in the same millisecond."""
    prefix = f"{time.time_ns() // 1_000_000:011x}"
    start = int.from_bytes(os.urandom(7)) >> 4
    if start + n > 1 << 52:
        start -= n
    return [f"{prefix}{value:013x}" for value in range(start, start + n)]
