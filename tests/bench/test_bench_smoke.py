"""The benchmark runs end to end with tiny sizes and writes its JSON (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_smoke_run_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--output", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(output.read_text())
    assert set(results) >= {"meta", "drain", "latency", "enqueue", "idle_cpu", "scale", "targets"}
    assert results["meta"]["smoke"] is True
    assert results["meta"]["n"] == 50
    assert set(results["drain"]) == {"xargs", "queuectl-sqlite", "queuectl-postgres", "huey", "rq"}
    # The limit and queuectl on SQLite need nothing optional: they must have values.
    for system in ("xargs", "queuectl-sqlite"):
        assert results["drain"][system]["2"]["seconds"] > 0, results["drain"][system]
    assert results["latency"]["queuectl-sqlite"]["samples"] == 5
    assert {"p50_ms", "p95_ms"} <= set(results["latency"]["queuectl-sqlite"])
    assert results["enqueue"]["enqueue_many"]["sqlite"]["per_s"] > 0
    assert results["enqueue"]["enqueue_file"]["sqlite"]["per_s"] > 0
    assert {"enqueue_ms", "python_pass_ms", "ratio", "import_click_ratio"} <= set(
        results["enqueue"]["single"]
    )
    assert "percent_of_core" in results["idle_cpu"]
    assert "skipped" in results["scale"]
    assert results["store_alone"]["sqlite"]["2"]["per_s"] > 0
    postgres = results["store_alone"]["postgres"]["2"]
    assert "per_s" in postgres or "skipped" in postgres, postgres
    assert "ratio" in results["hosts"] or "skipped" in results["hosts"], results["hosts"]
    idle_pg = results["idle_cpu_postgres"]
    assert "transactions_per_s" in idle_pg or "skipped" in idle_pg, idle_pg
    # Optional systems have a value or say why not.
    for system in ("queuectl-postgres", "huey", "rq"):
        cell = results["drain"][system]["2"]
        assert "seconds" in cell or {"skipped", "error", "timeout"} & set(cell), cell
    assert all({"target", "value", "bound", "ok"} <= set(t) for t in results["targets"])
    assert "Targets" in run.stdout


@pytest.mark.timeout(120)
def test_bulk_changes_run_on_both_stores() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.bulk", "--n", "200", "--ops", "cancel", "purge"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [line for line in run.stdout.splitlines() if line.startswith("| ") and "200" in line]
    assert len(rows) == 4, run.stdout
    assert all(line.rstrip(" |").endswith("| 200") for line in rows), run.stdout
