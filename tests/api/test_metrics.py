"""/metrics the Prometheus way, scraped and parsed as Prometheus would: counters that only go
up, through a real runner's work and the retention that deletes the jobs afterwards, and a
cumulative histogram of every attempt that ended."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from queuectl import Queue
from queuectl.store import DURATION_BOUNDS_MS
from tests.support.runners import cli, process_env, start_runner, tag, wait_until

__all__ = ["cli", "process_env", "start_runner", "tag"]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: Any) -> tuple[dict[str, str], Samples]:
    """The families' types by name, and every sample by (name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return types, samples


def totals(samples: Samples) -> Samples:
    return {key: value for key, value in samples.items() if key[0].endswith("_total")}


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def never_down(before: Samples, after: Samples) -> None:
    """Every counter of `before` is still there, none lower."""
    for key, value in totals(before).items():
        assert key in after, f"{key} disappeared"
        assert after[key] >= value, f"{key} went down: {value} -> {after[key]}"


def test_counters_only_go_up_through_a_runner_and_retention(
    client: Any, queue: Queue, start_runner: Callable[..., Any], cli: Callable[..., Any]
) -> None:
    for n in range(3):
        queue.enqueue("true", id=f"ok-{n}", queue="web")
    queue.enqueue("exit 3", id="bad", queue="web", max_retries=0)
    queue.enqueue("sleep 5", id="slow", queue="web", max_retries=0, timeout=0.2)
    queue.enqueue("sleep 60", id="gone", queue="mail")
    queue.enqueue("true", id="waiting", queue="mail", delay=3600)
    queue.cancel("waiting")
    types, first = scrape(client)
    assert types["queuectl_jobs_enqueued"] == "counter"
    assert types["queuectl_jobs_finished"] == "counter"
    assert types["queuectl_attempts"] == "counter"
    assert types["queuectl_job_duration_seconds"] == "histogram"
    assert sample(first, "queuectl_jobs_enqueued_total", queue="web") == 5
    assert sample(first, "queuectl_jobs_enqueued_total", queue="mail") == 2
    assert sample(first, "queuectl_jobs_finished_total", queue="mail", state="cancelled") == 1
    assert sample(first, "queuectl_job_duration_seconds_count", queue="web") == 0
    assert ("queuectl_attempts_total", (("outcome", "lost"), ("queue", "web"))) in first

    runner = start_runner("-n", "4")
    wait_until(lambda: queue.get("gone").state == "processing", what="the long job to start")
    queue.cancel("gone")
    wait_until(
        lambda: (
            queue.counts().get("web", {}).keys() <= {"completed", "dead"}
            and not queue.get("gone").lease_owner
        ),
        what="every job to end",
    )
    _, second = scrape(client)
    never_down(first, second)
    for name in ("queuectl_jobs_finished_total", "queuectl_attempts_total"):
        grown = sum(v for k, v in second.items() if k[0] == name)
        assert grown > sum(v for k, v in first.items() if k[0] == name), name
    web = {"queue": "web"}
    assert sample(second, "queuectl_jobs_finished_total", **web, state="completed") == 3
    assert sample(second, "queuectl_jobs_finished_total", **web, state="dead") == 2
    assert sample(second, "queuectl_jobs_finished_total", queue="mail", state="cancelled") == 2
    outcomes = {
        outcome: sample(second, "queuectl_attempts_total", **web, outcome=outcome)
        for outcome in ("completed", "failed", "timed_out", "lost", "cancelled")
    }
    assert outcomes == {"completed": 3, "failed": 1, "timed_out": 1, "lost": 0, "cancelled": 0}
    assert sample(second, "queuectl_attempts_total", queue="mail", outcome="cancelled") == 1

    # The histogram holds exactly the attempts of the history that ended, bucket by bucket.
    for name in ("web", "mail"):
        ended = [
            attempt.duration_ms
            for job in queue.list(queue=name)
            for attempt in queue.history(job.id)
            if attempt.finished_at_ms is not None
        ]
        assert sample(second, "queuectl_job_duration_seconds_count", queue=name) == len(ended)
        summed = sample(second, "queuectl_job_duration_seconds_sum", queue=name)
        assert round(summed * 1000) == sum(d or 0 for d in ended)
        for bound_ms in DURATION_BOUNDS_MS:
            le = str(float(bound_ms / 1000))
            within = sum(1 for d in ended if d is not None and d <= bound_ms)
            bucket = sample(second, "queuectl_job_duration_seconds_bucket", queue=name, le=le)
            assert bucket == within, (name, le)
        inf = sample(second, "queuectl_job_duration_seconds_bucket", queue=name, le="+Inf")
        assert inf == len(ended)

    # Retention deletes every finished job: the gauges fall, no counter does.
    runner.send(signal.SIGTERM)
    runner.wait(20)
    assert cli("config", "set", "retain_completed", "1s").returncode == 0
    assert cli("config", "set", "retain_dead", "1s").returncode == 0
    last = max(job.finished_at_ms or 0 for job in queue.list())
    wait_until(lambda: queue.now_ms() > last + 1000, what="the jobs to pass their retention")
    start_runner()
    wait_until(lambda: not queue.list(), what="retention to delete every job")
    _, third = scrape(client)
    assert sample(third, "queuectl_jobs", queue="web", state="completed") == 0
    assert totals(third) == totals(second)
    for key, value in second.items():
        if key[0].startswith("queuectl_job_duration_seconds"):
            assert third[key] == value, key
