"""contrib/'s Prometheus alerting rules and Grafana dashboard load, are complete, and query
only what /metrics exposes (scraped from a real store and parsed as Prometheus would)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from queuectl import Queue

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "contrib" / "prometheus" / "queuectl-rules.yml"
DASHBOARD = ROOT / "contrib" / "grafana" / "queuectl.json"
METRIC = re.compile(r"\bqueuectl_[a-z_]+\b")
#: What the rules must watch for, by the metrics each alert reads.
ALERTS = {
    "QueuectlJobsDying": {"queuectl_jobs_finished_total"},
    "QueuectlQueueBackingUp": {"queuectl_oldest_due_job_age_seconds"},
    "QueuectlNoRunnerForQueue": {"queuectl_oldest_due_job_age_seconds", "queuectl_queue_runners"},
    "QueuectlRunnerSilent": {"queuectl_runner_heartbeat_age_seconds", "queuectl_lease_seconds"},
}
#: The dashboard's rows, and a metric each must chart.
ROWS = {
    "Throughput": "queuectl_jobs_finished_total",
    "Failures": "queuectl_attempts_total",
    "Latency": "queuectl_job_duration_seconds_bucket",
    "Backlog": "queuectl_jobs",
    "Runners": "queuectl_runners",
}


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The sample names of /metrics, as Prometheus stores them (a counter's `_total`, a
    histogram's `_bucket`, `_count` and `_sum`)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from queuectl.api.app import create_app

    target = str(tmp_path_factory.mktemp("contrib") / "queue.db")
    with Queue(target) as queue:
        queue.enqueue("true")
    token = "contrib-token-0123456789"
    with TestClient(create_app(target, token), headers={"Authorization": f"Bearer {token}"}) as c:
        text = c.get("/metrics").text
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_count", "_sum"),
        }.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_the_alerting_rules_load_and_read_only_what_metrics_exposes(exposed: set[str]) -> None:
    document = yaml.safe_load(RULES.read_text())
    rules = [rule for group in document["groups"] for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} == set(ALERTS)
    for rule in rules:
        read = set(METRIC.findall(rule["expr"]))
        assert ALERTS[rule["alert"]] <= read, rule["alert"]
        assert read <= exposed, (rule["alert"], read - exposed)
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]
        assert rule["annotations"]["description"]
        assert re.fullmatch(r"\d+[smh]", rule["for"])


def test_the_dashboard_loads_and_charts_only_what_metrics_exposes(exposed: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({panel["id"] for panel in panels}) == len(panels)
    charted: dict[str, set[str]] = {}
    row = ""
    for panel in panels:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        if panel["type"] == "row":
            row = panel["title"]
            continue
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            read = set(METRIC.findall(target["expr"]))
            assert read, panel["title"]
            assert read <= exposed, (panel["title"], read - exposed)
            charted.setdefault(row, set()).update(read)
    for name, metric in ROWS.items():
        assert metric in charted.get(name, set()), name
    variable = {v["name"]: v for v in dashboard["templating"]["list"]}["queue"]
    assert set(METRIC.findall(variable["definition"])) <= exposed
