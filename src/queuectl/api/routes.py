"""The HTTP API's routes over the Queue API. Sync functions: FastAPI runs them in its
threadpool, and the SQLite store gives each thread its own connection."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import queuectl
from queuectl.admin import UNCHANGED
from queuectl.api import schemas, stats
from queuectl.api.deps import JsonRoute, get_queue, require_role, require_token, touched
from queuectl.api.gate import IDENTITY
from queuectl.config import canonical_key
from queuectl.errors import InvalidInputError
from queuectl.models import DEAD, STATES, new_job
from queuectl.queue import Queue
from queuectl.shapes import audit_dict, hook_dict, jobs_json, schedule_dict

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorOut, "description": "missing or wrong bearer token"},
    422: {"model": schemas.ErrorOut, "description": "invalid input"},
}
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"model": schemas.ErrorOut, "description": "no such job"}}
CONFLICT: Responses = {
    409: {"model": schemas.ErrorOut, "description": "duplicate id or wrong state"}
}
MAX_PAGE = 1000
MAX_SEARCH = 500
#: Jobs one POST /api/jobs may enqueue: each costs the server some kilobytes of objects while
#: it is validated, stored and answered, far more than its text in the body.
MAX_JOBS_PER_REQUEST = 1000
THROUGHPUT_CACHE_S = 5.0
F = TypeVar("F", bound=Callable[..., Any])

router = APIRouter(
    prefix="/api", dependencies=[Depends(require_token)], responses=ERRORS, route_class=JsonRoute
)
open_router = APIRouter(prefix="/api", responses=ERRORS)  # /api/health: no token needed
metrics_router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS)

QueueDep = Annotated[Queue, Depends(get_queue)]


def job_change(
    route: Callable[..., Callable[[F], F]], path: str, **options: Any
) -> Callable[[F], F]:
    """A route (`router.post`, ...) that changes one job and answers it (fields a job lacks
    left out): 404 if there is none, 409 if its state does not allow the change."""
    return route(
        path,
        tags=["jobs"],
        response_model=schemas.JobOut,
        response_model_exclude_unset=True,
        responses={**NOT_FOUND, **CONFLICT},
        **options,
    )


def queue_settings(
    route: Callable[..., Callable[[F], F]], path: str, model: Any
) -> Callable[[F], F]:
    """A route (`router.get`, ...) that answers queues' settings as `model` (of QueueOut; a
    limit or default a queue lacks left out)."""
    return route(path, tags=["queues"], response_model=model, response_model_exclude_unset=True)


# -- jobs


@router.post(
    "/jobs",
    status_code=201,
    tags=["jobs"],
    response_model=schemas.JobOut | list[schemas.JobOut],
    response_model_exclude_unset=True,
    responses=CONFLICT,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schemas.JOBS_IN_SCHEMA}},
        }
    },
)
def enqueue(request: Request, queue: QueueDep, payload: Annotated[Any, Body()]) -> Any:
    """Enqueue a job object, or an array of at most 1000 (all or none); 201 with the job(s)."""
    if isinstance(payload, list):
        if not payload:
            raise InvalidInputError("an empty array enqueues nothing")
        if len(payload) > MAX_JOBS_PER_REQUEST:
            raise InvalidInputError(
                f"at most {MAX_JOBS_PER_REQUEST} jobs per request, got {len(payload)}: "
                f"send them in several requests (or use queuectl enqueue --file)"
            )
        jobs = queue.enqueue_many(payload)
        touched(request, " ".join(job.id for job in jobs))
        return jobs_json(jobs)
    if not isinstance(payload, dict):
        raise InvalidInputError("the body must be a job object or an array of job objects")
    job = queue.enqueue_many([new_job(payload)])[0]
    touched(request, job.id)
    return job.to_dict()


@router.get(
    "/jobs", tags=["jobs"], response_model=schemas.JobPage, response_model_exclude_unset=True
)
def list_jobs(
    queue: QueueDep,
    state: Annotated[
        list[str] | None,
        Query(description=f"one of {', '.join(STATES)}; repeated: any of them"),
    ] = None,
    queue_name: Annotated[
        list[str] | None, Query(alias="queue", description="repeated: any of them")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    search: Annotated[
        str | None,
        Query(
            max_length=MAX_SEARCH,
            description="an id prefix, or text in the command or the last error; a page of a "
            "search may be short, or empty, and still have a next_cursor",
        ),
    ] = None,
    batch: Annotated[str | None, Query(description="only the jobs of this batch")] = None,
    held: Annotated[bool, Query(description="only held jobs")] = False,
) -> dict[str, Any]:
    """Jobs, newest first, a page at a time; repeated `state` or `queue`: the union, as
    `list --state A --state B` (an empty value filters nothing)."""
    states = [name for name in state or () if name]
    names = [name for name in queue_name or () if name]
    jobs, next_cursor = queue.page(
        states or None,
        names or None,
        limit,
        cursor or None,
        search=search or None,
        batch=batch or None,
        held=held,
    )
    return {"jobs": jobs_json(jobs), "next_cursor": next_cursor}


@router.get(
    "/jobs/{job_id}",
    tags=["jobs"],
    response_model=schemas.JobDetail,
    response_model_exclude_unset=True,
    responses=NOT_FOUND,
)
def show(queue: QueueDep, job_id: str) -> dict[str, Any]:
    """One job, every field, and its attempts (`history`), oldest first."""
    return queue.detail(job_id)


@router.get(
    "/jobs/{job_id}/output",
    tags=["jobs"],
    response_class=Response,
    responses={**NOT_FOUND, 200: {"content": {"text/plain": {}}, "description": "the output"}},
)
def output(
    queue: QueueDep,
    job_id: str,
    attempt: Annotated[
        int | None, Query(ge=1, le=2**31 - 1, description="default: the last")
    ] = None,
) -> Response:
    """The captured output (stdout and stderr interleaved) of the job's last attempt, or of
    `attempt`; a first line says how many bytes were dropped when it was cut at the limit."""
    return Response(queue.output(job_id, attempt), media_type="text/plain; charset=utf-8")


@job_change(router.post, "/jobs/{job_id}/cancel")
def cancel(queue: QueueDep, job_id: str) -> dict[str, Any]:
    """Cancel a pending, failed or running job (a running process is killed); 409 otherwise."""
    queue.cancel(job_id)
    return queue.get(job_id).to_dict()


@job_change(router.post, "/jobs/{job_id}/retry")
def retry(queue: QueueDep, job_id: str) -> dict[str, Any]:
    """Run a completed, dead or cancelled job again from attempt 0 (its history is kept), or
    a failed job waiting for its retry at once; 409 in any other state."""
    queue.requeue(job_id)
    return queue.get(job_id).to_dict()


@router.post(
    "/jobs/bulk",
    tags=["jobs"],
    response_model=schemas.BulkOut,
    response_model_exclude_none=True,
)
def bulk(request: Request, queue: QueueDep, body: schemas.BulkIn) -> dict[str, Any]:
    """Cancel, retry, hold, release or delete every job the filter matches, in batches that
    each commit; `dry_run: true` only counts them (for a confirmation). A delete needs the
    admin role, the others operate."""
    if body.action == "delete" and not body.dry_run:
        require_role(request, "admin")
    done = queue.bulk(
        body.action,
        [name for name in body.filter.state or () if name],
        [name for name in body.filter.queue or () if name],
        body.filter.search or None,
        batch=body.filter.batch or None,
        held=body.filter.held,
        all=body.all,
        dry_run=body.dry_run,
    )
    touched(request, f"{body.model_dump_json(exclude_defaults=True)} -> {json.dumps(done)}")
    return done


# -- batches


@router.get("/batches", tags=["batches"], response_model=list[schemas.BatchOut])
def batches(queue: QueueDep) -> list[dict[str, Any]]:
    """Every batch, oldest first, with its counts by state and progress."""
    return queue.batches()


@router.get(
    "/batches/{name}", tags=["batches"], response_model=schemas.BatchDetail, responses=NOT_FOUND
)
def batch(
    queue: QueueDep, name: str, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50
) -> dict[str, Any]:
    """One batch's progress (counts, done/total, first start, last end, ETA) and its newest
    jobs."""
    got = queue.batch(name)
    return {**got, "jobs": jobs_json(queue.list(batch=name, limit=limit))}


@router.post(
    "/batches/{name}/cancel",
    tags=["batches"],
    response_model=schemas.BatchCancelled,
    responses=NOT_FOUND,
)
def cancel_batch(queue: QueueDep, name: str) -> dict[str, Any]:
    """Cancel every pending, failed and running job of the batch, and their dependants."""
    return {"cancelled": queue.cancel_all(batch=name)}


@job_change(
    router.patch,
    "/jobs/{job_id}",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schemas.JobEdit.model_json_schema()}},
        }
    },
)
def edit(queue: QueueDep, job_id: str, payload: Annotated[Any, Body()]) -> dict[str, Any]:
    """Change a pending or failed job, atomically: 409 if it is running or finished (claimed
    meanwhile, say), and then nothing changed. The edit is noted in the job's `edits`."""
    if not isinstance(payload, dict):
        raise InvalidInputError("the body must be an object of the fields to change")
    return queue.edit(job_id, by="api", **payload).to_dict()


@job_change(router.post, "/jobs/{job_id}/hold")
def hold(queue: QueueDep, job_id: str) -> dict[str, Any]:
    """Hold a pending or failed job: no runner takes it until released; 409 otherwise."""
    return queue.hold(job_id)[0].to_dict()


@job_change(router.post, "/jobs/{job_id}/release")
def release(queue: QueueDep, job_id: str) -> dict[str, Any]:
    """Release a held job; 409 if it is running or finished."""
    return queue.release(job_id)[0].to_dict()


# -- dead-letter queue


@router.get(
    "/dlq", tags=["dlq"], response_model=list[schemas.JobOut], response_model_exclude_unset=True
)
def dlq_list(
    queue: QueueDep, limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None
) -> list[dict[str, Any]]:
    """Dead jobs, newest first, with their last error."""
    return jobs_json(queue.list(DEAD, None, limit))


@router.post(
    "/dlq/retry", tags=["dlq"], response_model=schemas.Retried, responses={**NOT_FOUND, **CONFLICT}
)
def dlq_retry(request: Request, queue: QueueDep, body: schemas.DlqRetryIn) -> dict[str, Any]:
    """Move the named dead jobs (`ids`), or every dead job (`all: true`), back to pending."""
    if bool(body.ids) == body.all:
        raise InvalidInputError('give "ids": [dead job ids] or "all": true')
    retried = queue.retry(*(body.ids or ()), all=body.all)
    touched(request, " ".join(retried))
    return {"retried": retried}


@router.delete("/dlq", tags=["dlq"], response_model=schemas.Purged)
def dlq_purge(queue: QueueDep) -> dict[str, Any]:
    """Delete every dead job."""
    return {"purged": queue.purge(DEAD)}


# -- who is calling, and what was done


@router.get("/whoami", tags=["access"], response_model=schemas.WhoAmI)
def whoami(request: Request) -> dict[str, Any]:
    """The name and role of the token this request carries (the dashboard hides what its
    role may not do)."""
    identity = request.scope[IDENTITY]
    return {"name": identity.name, "role": identity.role}


@router.get("/audit", tags=["access"], response_model=list[schemas.AuditOut])
def audit(
    queue: QueueDep,
    since: Annotated[str | None, Query(description="only the last 10m, 2h, 7d...")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> list[dict[str, Any]]:
    """The mutating requests recorded, newest first."""
    return [audit_dict(entry) for entry in queue.audit(since or None, limit)]


# -- status, configuration, queues


@router.get(
    "/status", tags=["status"], response_model=schemas.StatusOut, response_model_exclude_unset=True
)
def status(
    queue: QueueDep,
    since: Annotated[
        str | None, Query(description="also count the jobs finished in this window: 10m, 2h...")
    ] = None,
) -> dict[str, Any]:
    """Counts per state and queue, live runners, jobs completed in the last minute."""
    return queue.status(since=since or None)


@router.get("/stats/throughput", tags=["status"], response_model=schemas.Throughput)
def throughput(request: Request, queue: QueueDep) -> dict[str, Any]:
    """Jobs completed, and attempts failed, per minute over the last hour (cached 5 s)."""
    cache: dict[str, Any] = request.app.state.__dict__.setdefault("throughput", {})
    lock: threading.Lock = request.app.state.__dict__.setdefault(
        "throughput_lock", threading.Lock()
    )
    with lock:
        if cache.get("until", 0.0) < time.monotonic():
            cache["value"] = stats.throughput(queue, queue.now_ms())
            cache["until"] = time.monotonic() + THROUGHPUT_CACHE_S
        value: dict[str, Any] = cache["value"]
    return value


@router.get("/config", tags=["config"], response_model=dict[str, int | float])
def config_list(queue: QueueDep) -> dict[str, float]:
    """Every configuration key with its value."""
    return queue.config()


@router.put("/config/{key}", tags=["config"], response_model=schemas.ConfigValue)
def config_set(queue: QueueDep, key: str, body: schemas.ConfigValueIn) -> dict[str, Any]:
    """Validate and store one value; runners pick it up within seconds."""
    stored = queue.set_config(key, body.value)
    return {"key": canonical_key(key), "value": stored}


@queue_settings(router.get, "/queues", dict[str, schemas.QueueOut])
def queues(queue: QueueDep) -> dict[str, Any]:
    """Named queues: whether paused, their limits, their counts per state."""
    return queue.queues()


@queue_settings(router.put, "/queues/{name}", schemas.QueueOut)
def set_queue(queue: QueueDep, name: str, body: schemas.QueueLimitsIn) -> dict[str, Any]:
    """Set a queue's concurrency and rate limits, and its jobs' defaults (memory, cpus,
    max_procs, timeout, max_retries); the queue need not have jobs."""
    given = body.model_fields_set
    if given & {"timeout", "max_retries"}:
        shown = queue.set_queue_defaults(
            name,
            timeout=body.timeout if "timeout" in given else UNCHANGED,
            max_retries=body.max_retries if "max_retries" in given else UNCHANGED,
        )
        if not given & {"concurrency", "rate"}:
            return shown
    return queue.set_queue(
        name,
        concurrency=body.concurrency if "concurrency" in given else UNCHANGED,
        rate=body.rate if "rate" in given else UNCHANGED,
        memory=body.memory if "memory" in given else UNCHANGED,
        cpus=body.cpus if "cpus" in given else UNCHANGED,
        max_procs=body.max_procs if "max_procs" in given else UNCHANGED,
    )


@router.post("/queues/{name}/pause", tags=["queues"], response_model=schemas.QueueState)
def pause(queue: QueueDep, name: str) -> dict[str, Any]:
    """Stop runners from starting new jobs of this queue (running ones finish)."""
    queue.pause(name)
    return {"queue": name, "paused": True}


@router.post("/queues/{name}/resume", tags=["queues"], response_model=schemas.QueueState)
def resume(queue: QueueDep, name: str) -> dict[str, Any]:
    """Let runners start jobs of this queue again."""
    queue.resume(name)
    return {"queue": name, "paused": False}


# -- schedules


@router.get("/schedules", tags=["schedules"], response_model=list[schemas.ScheduleOut])
def schedules(queue: QueueDep) -> list[dict[str, Any]]:
    """The schedules, with their last and next enqueue times."""
    return [schedule_dict(s) for s in queue.schedules()]


@router.post("/schedules", tags=["schedules"], status_code=201, response_model=schemas.ScheduleOut)
def add_schedule(queue: QueueDep, body: schemas.ScheduleIn) -> dict[str, Any]:
    """Add (or replace) a schedule; 201 with it and its next enqueue time."""
    added = queue.add_schedule(body.name, body.job, cron=body.cron, every=body.every, tz=body.tz)
    return schedule_dict(added)


@router.delete(
    "/schedules/{name}", tags=["schedules"], response_model=schemas.Removed, responses=NOT_FOUND
)
def remove_schedule(queue: QueueDep, name: str) -> dict[str, Any]:
    """Remove a schedule; the jobs it already enqueued stay."""
    queue.remove_schedule(name)
    return {"removed": name}


# -- hooks


@router.get("/hooks", tags=["hooks"], response_model=list[schemas.HookOut])
def hooks(queue: QueueDep) -> list[dict[str, Any]]:
    """The hooks: what each enqueues, on which events of which queue's jobs."""
    return [hook_dict(h) for h in queue.hooks()]


@router.post("/hooks", tags=["hooks"], status_code=201, response_model=schemas.HookOut)
def add_hook(queue: QueueDep, body: schemas.HookIn) -> dict[str, Any]:
    """Add (or replace) a hook; 201 with it."""
    return hook_dict(queue.add_hook(body.name, body.on, body.job, queue=body.queue))


@router.delete("/hooks/{name}", tags=["hooks"], response_model=schemas.Removed, responses=NOT_FOUND)
def remove_hook(queue: QueueDep, name: str) -> dict[str, Any]:
    """Remove a hook; the hook jobs it already enqueued stay."""
    queue.remove_hook(name)
    return {"removed": name}


@open_router.get("/health", tags=["status"], response_model=schemas.Health)
def health(queue: QueueDep) -> dict[str, Any]:
    """200 with the store's kind and schema version when the store answers."""
    info = queue.describe()
    return {
        "status": "ok",
        "kind": info["kind"],
        "schema_version": info["schema_version"],
        "version": queuectl.__version__,
    }


# -- Prometheus


@metrics_router.get(
    "/metrics",
    tags=["status"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
def metrics(request: Request) -> Response:
    """Jobs by state and queue, attempts, durations, runners, oldest due job: read at scrape time."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
