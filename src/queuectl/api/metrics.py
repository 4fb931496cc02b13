"""GET /metrics: Prometheus text computed from the store at scrape time by a custom collector."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from queuectl.api import stats
from queuectl.models import STATES
from queuectl.queue import Queue

if TYPE_CHECKING:
    pass

DURATION_BUCKETS_S = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 3600)


class QueueCollector(Collector):
    """Reads the queue on every scrape; nothing is kept between scrapes."""

    def __init__(self, queue: Queue) -> None:
        self.queue = queue

    def collect(self) -> Iterator[Metric]:
        queue = self.queue
        now_ms = queue.store.clock.now_ms()

        jobs = GaugeMetricFamily("queuectl_jobs", "Jobs in the store", labels=["queue", "state"])
        for name, states in sorted(queue.store.counts().items()):
            for state in STATES:
                jobs.add_metric([name, state], states.get(state, 0))
        yield jobs

        paused = GaugeMetricFamily(
            "queuectl_queue_paused", "1 if the queue is paused", labels=["queue"]
        )
        for name, info in queue.queues().items():
            paused.add_metric([name], int(info["paused"]))
        yield paused

        snap = stats.snapshot(queue, now_ms)
        attempts = GaugeMetricFamily(
            "queuectl_job_attempts",
            f"Attempts started by the jobs in the store (newest {stats.SCAN_CAP} of each state)",
            labels=["queue", "state"],
        )
        for (name, state), total in sorted(snap.attempts.items()):
            attempts.add_metric([name, state], total)
        yield attempts

        durations = GaugeHistogramMetricFamily(
            "queuectl_job_duration_seconds",
            f"Duration of the last attempt of recently finished jobs "
            f"(newest {stats.SCAN_CAP} of each finished or failed state)",
            labels=["queue"],
        )
        for name, values in sorted(snap.durations_s.items()):
            buckets = [
                (_bound(bound), sum(1 for v in values if v <= bound))
                for bound in DURATION_BUCKETS_S
            ]
            buckets.append(("+Inf", len(values)))
            durations.add_metric([name], buckets, sum(values))
        yield durations

        oldest = GaugeMetricFamily(
            "queuectl_oldest_due_job_age_seconds",
            "How long the oldest job that may start now has been due",
            labels=["queue"],
        )
        for name, run_at_ms in sorted(snap.oldest_due_ms.items()):
            oldest.add_metric([name], max(0, now_ms - run_at_ms) / 1000)
        yield oldest

        # Queue.list shadows the builtin inside the class, which confuses mypy about its lists.
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
        yield GaugeMetricFamily(
            "queuectl_completed_last_minute",
            "Jobs completed in the last minute",
            value=queue.store.done_since(now_ms - 60_000),
        )


def _bound(bound: float) -> str:
    return str(float(bound))


def registry(queue: Queue) -> CollectorRegistry:
    """A registry of its own per app, so that two apps in one process do not collide."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(QueueCollector(queue))
    return reg
