"""`explain`: why a job is or is not running now, in one or two plain sentences."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from queuectl.durations import local_text, ms_to_iso
from queuectl.models import CANCELLED, COMPLETED, DEAD, PROCESSING, Job

if TYPE_CHECKING:
    from queuectl.queue import Queue
    from queuectl.store import Runner


@dataclass(frozen=True)
class QueueFlow:
    """A queue's limits (None: none) against what runs and started now."""

    concurrency: int | None
    running: int
    rate_jobs: int | None
    started_in_window: int
    window_opens_at_ms: int | None


def _in(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def explain_job(queue: Queue, job_id: str) -> dict[str, Any]:
    """{"id", "state", "reason", "message"}: the reason is a stable code, the message prose."""
    job = queue.get(job_id)
    now = queue.now_ms()

    def answer(reason: str, message: str) -> dict[str, Any]:
        found = {"id": job.id, "state": job.state, "reason": reason, "message": message}
        if job.expires_at_ms is not None and job.state not in (COMPLETED, DEAD, CANCELLED):
            found = with_deadline(found, job.expires_at_ms)
        return found if job.made_by is None else made_by_hook(found, job.made_by)

    if job.state == COMPLETED:
        return answer("finished", f"{job.id} completed at {local_text(job.finished_at_ms)}.")
    if job.state == DEAD:
        return answer(
            "finished",
            f"{job.id} is dead after {job.attempts} run(s) ({job.last_error}); "
            f"`queuectl dlq retry {job.id}` runs it again.",
        )
    if job.state == CANCELLED:
        if job.lease_owner is not None:
            return answer(
                "finished",
                f"{job.id} was cancelled ({job.last_error}); its runner {job.lease_owner} is "
                f"still killing its processes, which hold its lock and queue slot until gone.",
            )
        return answer("finished", f"{job.id} was cancelled ({job.last_error}).")
    runners = queue.runners()
    if job.state == PROCESSING:
        owner = next((r for r in runners if r.id == job.lease_owner), None)
        # A live runner renews its leases every lease/3: an expired lease means its runner
        # stopped, even one on another host whose death this host cannot see.
        expired = job.lease_expires_at_ms is not None and job.lease_expires_at_ms < now
        if owner is None or expired:
            when = "expired" if expired else "expires"
            return answer(
                "lease_owner_gone",
                f"{job.id} is marked running, but its runner {job.lease_owner} is gone; its lease "
                f"{when} at {local_text(job.lease_expires_at_ms)}, and a live runner recovers it "
                f"as 'worker lost' (with none up, `queuectl worker recover` does).",
            )
        return answer(
            "running",
            f"{job.id} is running (attempt {job.attempts} of {job.max_retries + 1}) on runner "
            f"{owner.host} pid {owner.pid} since {local_text(job.started_at_ms)}.",
        )
    if job.lease_owner is not None:  # requeued while its cancelled attempt still dies
        return answer(
            "waiting_for_previous_attempt",
            f"{job.id} waits for the processes of its cancelled attempt to end on runner "
            f"{job.lease_owner}; it may start once they are gone.",
        )
    if job.held:
        return answer(
            "held",
            f"{job.id} is held: no runner takes it until `queuectl release {job.id}`.",
        )
    waits = queue.conditions(job.id) if job.depends_on or job.state == "pending" else []
    unfinished = [
        f"batch {w['batch']} to complete ({w['state']})"
        if "batch" in w
        else f"{w['id']} ({w['state']})"
        if w["on"] == COMPLETED
        else f"{w['id']} to {'fail' if w['on'] == 'failed' else 'finish'} ({w['state']})"
        for w in waits
        if w["met"] is None and w["state"] != "deleted"
    ]
    if unfinished:
        return answer(
            "waiting_for_dependency",
            f"{job.id} waits for {len(unfinished)} dependenc{'y' if len(unfinished) == 1 else 'ies'}"
            f"{' to complete' if all(w['on'] == COMPLETED and 'batch' not in w for w in waits) else ''}"
            f": {', '.join(unfinished)}.",
        )
    if job.run_at_ms > now:
        why = f"a retry after '{job.last_error}'" if job.last_error else "its run_at"
        return answer(
            "waiting_for_run_at",
            f"{job.id} waits for {why}: due in {_in(job.run_at_ms - now)}, at {local_text(job.run_at_ms)}.",
        )
    if queue.is_paused(job.queue):
        return answer(
            "queue_paused",
            f"{job.id} is due, but its queue '{job.queue}' is paused; "
            f"`queuectl queue resume {job.queue}` lets runners take it.",
        )
    held = flow_reason(queue, job, now)
    if held is not None:
        return answer(*held)
    serving = [r for r in runners if r.queues is None or job.queue in r.queues]
    hint = "" if job.queue == "default" else f" --queue {job.queue}"
    hint += "".join(f" --tag {tag}" for tag in job.requires)
    if not serving:
        return answer(
            "no_runner",
            f"{job.id} is due, but no runner serving queue '{job.queue}' is up; "
            f"start one with `queuectl worker start{hint}`.",
        )
    if job.requires:
        tagged = [r for r in serving if set(job.requires) <= set(r.tags)]
        if not tagged:
            return answer("no_runner_with_tags", no_tags_message(job, serving))
        serving = tagged
    if all(r.stop_requested for r in serving):
        only = "the only runner" if len(serving) == 1 else f"all {len(serving)} runners"
        return answer(
            "runner_stopping",
            f"{job.id} is due, but {only} serving queue '{job.queue}' "
            f"{'is' if len(serving) == 1 else 'are'} stopping (asked by `queuectl worker stop`) "
            f"and take{'s' if len(serving) == 1 else ''} no new job; `queuectl worker stop "
            f"--cancel` lets {'it' if len(serving) == 1 else 'them'} serve again, or start "
            f"another with `queuectl worker start{hint}`.",
        )
    serving = [r for r in serving if not r.stop_requested]
    limits = queue.job_limits(job)
    if limits and not [r for r in serving if set(limits) <= set(r.enforces)]:
        return answer("no_runner_enforces_limits", _unenforced(job, limits, serving))
    serving = [r for r in serving if set(limits) <= set(r.enforces)]
    workers = sum(r.workers for r in serving)
    busy = sum(len(r.running) for r in serving)
    if busy >= workers:
        return answer(
            "no_free_worker",
            f"{job.id} is due and waits for a free worker: all {workers} worker(s) of the "
            f"{len(serving)} runner(s) serving '{job.queue}' are busy.",
        )
    return answer(
        "due",
        f"{job.id} is due now and a runner serving '{job.queue}' has a free worker; it should "
        f"start within moments (jobs of higher priority or older run first).",
    )


def _unenforced(job: Job, limits: dict[str, Any], serving: list[Runner]) -> str:
    """Which of the job's limits no runner that serves its queue enforces (if each has one
    that does, none enforces them all)."""
    missing = [name for name in limits if not any(name in r.enforces for r in serving)]
    shown = ", ".join(f"{name} {_limit_text(name, limits[name])}" for name in missing or limits)
    which = "its limits" if not missing else f"its limit{'s' if len(missing) > 1 else ''}"
    return (
        f"{job.id} is due, but no runner serving queue '{job.queue}' enforces {which} "
        f"({shown}{', all together' if not missing else ''}); a runner enforces limits where "
        f"each job gets a cgroup of its own (`queuectl worker list` shows what each enforces)."
    )


def _limit_text(name: str, value: Any) -> str:
    if name == "memory":
        from queuectl.usage import size_name

        return size_name(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def no_tags_message(job: Job, serving: list[Runner]) -> str:
    """Why no runner serving the job's queue may claim it: the tags none of them has, or
    that none has them all."""
    had = {tag for r in serving for tag in r.tags}
    missing = [tag for tag in job.requires if tag not in had]
    start = f"queuectl worker start {' '.join(f'--tag {t}' for t in job.requires)}"
    if job.queue != "default":
        start += f" --queue {job.queue}"
    if missing:
        why = f"no runner serving queue '{job.queue}' has tag{'s' if len(missing) > 1 else ''} "
        why += ", ".join(missing)
    else:
        why = f"no runner serving queue '{job.queue}' has all of {', '.join(job.requires)}"
    return f"{job.id} is due and requires tags {', '.join(job.requires)}, but {why}; start one with `{start}`."


def flow_reason(queue: Queue, job: Job, now: int) -> tuple[str, str] | None:
    """The flow control holding a due job back, if any: (reason, message)."""
    if job.lock is not None:
        holder = queue.lock_holder(job.lock)
        if holder is not None and holder != job.id:
            return (
                "waiting_for_lock",
                f"{job.id} waits for lock {job.lock!r}, held by running job {holder}; "
                f"it may start when {holder} ends.",
            )
    flow = queue.queue_flow(job.queue)
    if flow.concurrency is not None and flow.running >= flow.concurrency:
        return (
            "queue_concurrency_limit",
            f"{job.id} is due, but queue '{job.queue}' already runs {flow.running} job(s), its "
            f"concurrency limit of {flow.concurrency}; it may start when one of them ends.",
        )
    if flow.window_opens_at_ms is not None and flow.window_opens_at_ms > now:
        return (
            "queue_rate_limit",
            f"{job.id} is due, but queue '{job.queue}' started {flow.started_in_window} job(s) "
            f"within its rate window (at most {flow.rate_jobs}); the window next allows a start "
            f"in {_in(flow.window_opens_at_ms - now)}, at {local_text(flow.window_opens_at_ms)}.",
        )
    return None


def made_by_hook(found: dict[str, Any], made_by: str) -> dict[str, Any]:
    """A hook job's explanation also says which job and event made it."""
    return {**found, "made_by": made_by, "message": f"{found['message']} It was made by {made_by}."}


def with_deadline(found: dict[str, Any], expires_at_ms: int) -> dict[str, Any]:
    """A job with a deadline: the explanation says when it is cancelled if not started."""
    return {
        **found,
        "expires_at": ms_to_iso(expires_at_ms),
        "message": f"{found['message']} If it has not started by {local_text(expires_at_ms)}, "
        f"it is cancelled (expired).",
    }
