"""The benchmark runs end to end with tiny sizes and writes its JSON (no timing is asserted);
`--against` resolves releases, installs a commit and compares it, row by row."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import against

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
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
    assert results["latency"]["queuectl-sqlite"]["wall"]["samples"] == 5
    assert results["latency_cli"]["queuectl-sqlite"]["samples"] == 5
    assert results["latency_cli"]["queuectl-sqlite"]["wall"]["p50_ms"] >= 0
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


def head_commit() -> str:
    try:
        return against.git("rev-parse", "HEAD")
    except (against.BadRef, OSError):
        pytest.skip("not a git checkout: --against has no commits to install")


def test_a_release_resolves_to_its_commit_and_back() -> None:
    head = head_commit()
    changelog = (
        "# Changelog\n\n## Unreleased: 9.0.0\n\n"
        f"## 7.7.7 (commit {head[:7]}, 2026-12-05)\n\n## 0.0.1 (commit 0000000, 2026-01-01)\n"
    )
    assert against.releases(changelog) == {"7.7.7": head[:7], "0.0.1": "0000000"}
    assert against.resolve("7.7.7", changelog) == (head, f"7.7.7 ({head[:7]})")
    assert against.resolve("v7.7.7", changelog) == (head, f"7.7.7 ({head[:7]})")
    # A commit that is a release is named as the release.
    assert against.resolve("HEAD", changelog) == (head, f"7.7.7 ({head[:7]})")
    assert against.resolve("HEAD", "")[1] == head[:7]
    for ref in ("0.0.1", "8.8.8", "no-such-ref"):
        with pytest.raises(against.BadRef, match=f"--against {ref}: neither a release"):
            against.resolve(ref, changelog)


def test_the_repository_changelog_names_release_0_1_0() -> None:
    assert against.releases(against.CHANGELOG.read_text())["0.1.0"] == "d3eb84f"


def test_an_unknown_ref_is_one_line_and_exit_2() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--against", "no-such-ref"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert run.stderr.startswith("error: --against no-such-ref: neither a release")
    assert len(run.stderr.strip().splitlines()) == 1


def comparison(cells: dict[str, list[dict[str, object]]]) -> dict[str, object]:
    return {
        "subjects": [{"name": "0.1.0 (d3eb84f)"}, {"name": "e114b30"}, {"name": "this tree"}],
        "cells": cells,
        "limits": {"2": 0.5},
        "meta": {
            "n": 1000,
            "workers": [2],
            "hosts": 4,
            "host_workers": 2,
            "rounds": 3,
            "latency_samples": 4,
            "took_s": 1.0,
        },
    }


def test_the_table_flags_a_row_more_than_a_tenth_worse_and_says_why_a_row_is_missing() -> None:
    results = comparison(
        {
            "drain sqlite W=2": [{"seconds": 1.0}, {"seconds": 1.1}, {"seconds": 1.2}],
            "drain postgres W=2": [{"seconds": 2.0}, {"seconds": 2.0}, {"seconds": 2.1}],
            "hosts": [{"error": "RuntimeError: no such option"}, {"seconds": 3}, {"seconds": 3}],
            "one-by-one sqlite api": [
                {"start_ms": [1, 1, 2, 9], "wall_ms": [2, 2, 2, 2]},
                {"skipped": "not here"},
                {"start_ms": [1, 1, 1, 1], "wall_ms": [15, 16, 15, 17]},
            ],
        }
    )
    rows = {row.label.split(";")[0]: row for row in against.figures(results)}
    drain = rows["drain of 1,000 `true` jobs, SQLite, W=2"]
    assert drain.label.endswith("; `xargs -P 2`: 0.50 s")
    assert drain.texts == ["1.00 s", "1.10 s", "1.20 s"]
    assert drain.ratios() == [pytest.approx(1.2), pytest.approx(1.2 / 1.1)]
    assert drain.worse  # over the first, not the second
    assert not rows["drain of 1,000 `true` jobs, PostgreSQL, W=2"].worse  # 1.05x
    hosts = next(row for label, row in rows.items() if "distinct hosts" in label)
    assert hosts.texts[0] == "n/a (RuntimeError: no such option)"
    assert hosts.ratios() == [None, 1.0]
    assert not hosts.worse
    start = rows["enqueue-to-start through `Queue.enqueue`, SQLite, p50"]
    assert start.texts == ["1 ms", "n/a (not here)", "1 ms"]
    assert start.ratios() == [1.0, None]
    assert rows["enqueue-to-start through `Queue.enqueue`, SQLite, p95"].texts[0] == "9 ms"
    wall = rows["one `true` job's own wall into an idle runner, SQLite, via `Queue.enqueue`, p50"]
    assert wall.ratios() == [pytest.approx(7.5), None]
    assert wall.worse
    table = against.readme_table(results)
    assert table[:2] == [
        "| figure | 0.1.0 (d3eb84f) | e114b30 | this tree | / 0.1.0 | / e114b30 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    assert (
        "| drain of 1,000 `true` jobs, SQLite, W=2; `xargs -P 2`: 0.50 s | 1.00 s | 1.10 s "
        "| 1.20 s | **1.20x** | 1.09x |"
    ) in table
    assert sum("**" in line for line in table) == 3
    text = against.render(results)
    assert "3 row(s) more than 10% worse than 0.1.0 (d3eb84f) or e114b30" in text
    assert text.endswith("\n".join(table))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_against_head_installs_it_and_compares_both(tmp_path: Path) -> None:
    """The one real install: HEAD into .bench-cache (30 to 60 s the first time, then cached),
    compared with this tree on SQLite at N=50 over two alternated rounds."""
    head = head_commit()
    output = tmp_path / "against.json"
    started = time.monotonic()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--against",
            "HEAD",
            "--smoke",
            "--only",
            "queuectl-sqlite",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    results = json.loads(output.read_text())
    release, ours = results["subjects"]
    assert release["commit"] == head
    assert ours["name"].startswith("this tree")
    assert (against.CACHE / head / "installed").exists()
    assert results["meta"]["rounds"] == 2
    # Both measured every SQLite row, each round in turn (the release, then this tree).
    order = [
        line.split("] ", 1)[1]
        for line in run.stderr.splitlines()
        if line.startswith("[") and ": " in line
    ]
    assert order[:2] == [
        f"drain sqlite W=2: {release['name']} (round 1/2)",
        f"drain sqlite W=2: {ours['name']} (round 1/2)",
    ]
    cells = results["cells"]
    for side in (0, 1):
        assert cells["drain sqlite W=2"][side]["seconds"] > 0
        assert len(cells["one-by-one sqlite api"][side]["start_ms"]) == 10  # 2 rounds pooled
        assert len(cells["one-by-one sqlite cli"][side]["wall_ms"]) == 10
        assert cells["single enqueue"][side]["enqueue_ms"] > 0
    assert "hosts" not in cells  # PostgreSQL rows not asked for
    assert "bench/README.md table:" in run.stdout
    assert f"| figure | {release['name']} | {ours['name']} | / {head[:7]} |" in run.stdout
    print(f"--against HEAD took {time.monotonic() - started:.0f} s")


def bench_module(module: str, *args: str) -> str:
    """`python -m bench.MODULE ARGS...`'s output, once it has exited 0."""
    run = subprocess.run(
        [sys.executable, "-m", f"bench.{module}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.timeout(120)
def test_bulk_changes_run_on_both_stores() -> None:
    out = bench_module("bulk", "--n", "200", "--ops", "cancel", "purge")
    rows = [line for line in out.splitlines() if line.startswith("| ") and "200" in line]
    assert len(rows) == 4, out
    # | call | store | jobs | seconds | changed | ...: every job asked was changed
    assert all(line.split("|")[5].strip() == "200" for line in rows), out


@pytest.mark.timeout(120)
def test_the_bulk_probe_runs_on_both_stores() -> None:
    # retry touches only dead jobs, never the probe's own (it enqueues and claims beside the
    # call), so the count is the call's alone
    out = bench_module("bulk", "--n", "200", "--ops", "retry", "--probe")
    rows = [line for line in out.splitlines() if line.startswith("| retry |")]
    assert len(rows) == 2, out
    assert all(line.split("|")[5].strip() == "200" for line in rows), out
    assert all(line.split("|")[8].strip() != "-" for line in rows), out  # claims timed


@pytest.mark.timeout(120)
def test_the_backlog_probe_runs_on_both_stores() -> None:
    out = bench_module("backlog", "--backlog", "200", "--claims", "5")
    rows = [json.loads(line.split(None, 1)[1]) for line in out.splitlines()]
    assert [row["backlog"] for row in rows] == [0, 200, 0, 200], out
    assert all(0 < row["median_ms"] <= row["max_ms"] for row in rows), out
