"""`python -m bench.dashboard` runs end to end at a tiny size (no figure is asserted)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_the_dashboard_bench_measures_both_windows() -> None:
    from bench.dashboard import browser_missing

    missing = browser_missing()
    if missing:
        if os.environ.get("QUEUECTL_REQUIRE_BROWSER") == "1":
            pytest.fail(missing)
        pytest.skip(missing)
    args = ["--stored", "300", "--seconds", "1", "--kinds", "sqlite"]
    run = subprocess.run(
        [sys.executable, "-m", "bench.dashboard", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert '"no_page": {"seconds"' in run.stderr, run.stderr[-2000:]
    assert '"page_open": {"seconds"' in run.stderr, run.stderr[-2000:]
    assert "| sqlite |" in run.stdout, run.stdout
    assert "n/a" not in run.stdout, run.stdout
