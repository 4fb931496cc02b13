"""GET /metrics: Prometheus text computed from the store at scrape time by a custom collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from queuectl.models import FINISHED_STATES, STATES
from queuectl.queue import Queue
from queuectl.store import DURATION_BOUNDS_MS
from queuectl.usage import NO_PEAK, PEAK_BOUNDS_BYTES, Usage

OUTCOMES = ("completed", "failed", "timed_out", "lost", "cancelled")


class QueueCollector(Collector):
    """Reads the queue on every scrape; nothing is kept between scrapes."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        queue = self.queue
        now_ms = queue.now_ms()

        jobs = GaugeMetricFamily("queuectl_jobs", "Jobs in the store", labels=["queue", "state"])
        for name, states in sorted(queue.counts().items()):
            for state in STATES:
                jobs.add_metric([name, state], states.get(state, 0))
        yield jobs

        paused = GaugeMetricFamily(
            "queuectl_queue_paused", "1 if the queue is paused", labels=["queue"]
        )
        queues = queue.queues()
        for name, info in queues.items():
            paused.add_metric([name], int(info["paused"]))
        yield paused
        yield from _flow_metrics(queue, queues)

        attempts = GaugeMetricFamily(
            "queuectl_job_attempts",
            "Attempts started by the jobs in the store",
            labels=["queue", "state"],
        )
        for name, states in sorted(queue.attempts_by_queue().items()):
            for state, total in sorted(states.items()):
                attempts.add_metric([name, state], total)
        yield attempts

        yield from _totals(queue)

        oldest = GaugeMetricFamily(
            "queuectl_oldest_due_job_age_seconds",
            "How long the oldest job that may start now has been due",
            labels=["queue"],
        )
        for name, run_at_ms in sorted(queue.oldest_due().items()):
            oldest.add_metric([name], max(0, now_ms - run_at_ms) / 1000)
        yield oldest

        runners = queue.runners()
        yield GaugeMetricFamily("queuectl_runners", "Live runners", value=len(runners))
        yield GaugeMetricFamily(
            "queuectl_workers",
            "Worker slots of the live runners",
            value=sum(r.workers for r in runners),
        )
        heartbeat = GaugeMetricFamily(
            "queuectl_runner_heartbeat_age_seconds",
            "Seconds since each live runner's last heartbeat",
            labels=["runner", "host"],
        )
        for runner in runners:
            heartbeat.add_metric(
                [runner.id, runner.host], max(0, now_ms - runner.heartbeat_at_ms) / 1000
            )
        yield heartbeat
        serving = GaugeMetricFamily(
            "queuectl_queue_runners",
            "Live runners that serve the queue (those of every queue included)",
            labels=["queue"],
        )
        for name in queues:
            serving.add_metric(
                [name], sum(1 for r in runners if r.queues is None or name in r.queues)
            )
        yield serving
        yield GaugeMetricFamily(
            "queuectl_lease_seconds",
            "A runner silent this long loses its jobs (config lease_seconds)",
            value=queue.get_config("lease_seconds"),
        )
        yield GaugeMetricFamily(
            "queuectl_completed_last_minute",
            "Jobs completed in the last minute",
            value=queue.done_since(now_ms - 60_000),
        )


def _totals(queue: Queue) -> Iterator[Metric]:
    """The counters that only go up, and the cumulative histogram of attempt durations: every
    label of a queue is there from its first event, at 0, so that rate() sees it start."""
    totals = queue.totals()
    names = sorted({*totals.enqueued, *totals.finished, *totals.attempts})
    enqueued = CounterMetricFamily("queuectl_jobs_enqueued", "Jobs enqueued", labels=["queue"])
    for name in names:
        enqueued.add_metric([name], totals.enqueued.get(name, 0))
    yield enqueued
    finished = CounterMetricFamily(
        "queuectl_jobs_finished",
        "Jobs that reached a final state (completed, dead, cancelled)",
        labels=["queue", "state"],
    )
    for name in names:
        for state in sorted(FINISHED_STATES):
            finished.add_metric([name, state], totals.finished.get(name, {}).get(state, 0))
    yield finished
    attempts = CounterMetricFamily(
        "queuectl_attempts",
        "Attempts that ended, by outcome (completed, failed, timed_out, lost, cancelled)",
        labels=["queue", "outcome"],
    )
    for name in names:
        for outcome in OUTCOMES:
            attempts.add_metric([name, outcome], totals.attempts.get(name, {}).get(outcome, 0))
    yield attempts
    durations = HistogramMetricFamily(
        "queuectl_job_duration_seconds",
        "Duration of every attempt that ended",
        labels=["queue"],
    )
    for name in names:
        found = totals.durations.get(name, [])
        per_bound: dict[int, int] = {}
        for bucket in found:
            if bucket.bound_ms is not None:
                per_bound[bucket.bound_ms] = per_bound.get(bucket.bound_ms, 0) + bucket.count
        buckets, seen = [], 0
        for bound_ms in DURATION_BOUNDS_MS:
            seen += per_bound.get(bound_ms, 0)
            buckets.append((_bound(bound_ms / 1000), seen))
        buckets.append(("+Inf", sum(bucket.count for bucket in found)))
        durations.add_metric([name], buckets, sum(b.total_ms for b in found) / 1000)
    yield durations
    yield from _usage(names, queue.usage_totals())


def _usage(names: list[str], rows: list[Usage]) -> Iterator[Metric]:
    """CPU time and the histogram of peak memory of the attempts that ended (those that
    recorded a peak), from their counted totals."""
    per_queue: dict[str, list[Usage]] = {}
    for row in rows:
        per_queue.setdefault(row.queue, []).append(row)
    cpu = CounterMetricFamily(
        "queuectl_cpu_seconds",
        "CPU time (user and system) of every attempt that ended",
        labels=["queue"],
    )
    peaks = HistogramMetricFamily(
        "queuectl_peak_memory_bytes",
        "Peak memory of every attempt that ended with one recorded",
        labels=["queue"],
    )
    for name in sorted({*names, *per_queue}):
        found = per_queue.get(name, [])
        cpu.add_metric([name], sum(row.cpu_ms for row in found) / 1000)
        per_bound = {row.bound_bytes: row.n for row in found}
        buckets, seen = [], 0
        for bound in PEAK_BOUNDS_BYTES:
            seen += per_bound.get(bound, 0)
            buckets.append((_bound(float(bound)), seen))
        recorded = [row for row in found if row.bound_bytes != NO_PEAK]
        buckets.append(("+Inf", sum(row.n for row in recorded)))
        peaks.add_metric([name], buckets, float(sum(row.peak_bytes for row in recorded)))
    yield cpu
    yield peaks


def _flow_metrics(queue: Queue, queues: dict[str, dict[str, Any]]) -> Iterator[Metric]:
    """Each limited queue's limits, and every queue's running jobs."""
    limit = GaugeMetricFamily(
        "queuectl_queue_concurrency_limit",
        "At most this many jobs of the queue run at once (queues with a limit)",
        labels=["queue"],
    )
    rate_jobs = GaugeMetricFamily(
        "queuectl_queue_rate_limit_jobs",
        "At most this many attempts of the queue start per window (queues with a rate)",
        labels=["queue"],
    )
    rate_window = GaugeMetricFamily(
        "queuectl_queue_rate_limit_window_seconds",
        "The length of the queue's sliding rate window",
        labels=["queue"],
    )
    running = GaugeMetricFamily(
        "queuectl_queue_running", "Jobs of the queue running now", labels=["queue"]
    )
    for name, info in sorted(queues.items()):
        if info["concurrency"] is not None:
            limit.add_metric([name], info["concurrency"])
        if info["rate"] is not None:
            rate_jobs.add_metric([name], info["rate"]["jobs"])
            rate_window.add_metric([name], info["rate"]["seconds"])
        running.add_metric([name], info["counts"]["processing"])
    yield from (limit, rate_jobs, rate_window, running)


def _bound(bound: float) -> str:
    return str(float(bound))


def registry(queue: Queue) -> CollectorRegistry:
    """A registry of its own per app, so that two apps in one process do not collide."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(QueueCollector(queue))
    return reg
