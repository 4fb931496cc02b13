"""`python -m bench --against REF`: this tree beside an earlier queuectl, measured in turns.

REF is a release's version as CHANGELOG.md names it (`0.1.0`) or any commit. Its tree is
installed, with the PostgreSQL extra, into a virtual environment of its own under
`.bench-cache/COMMIT/` (kept: a second run starts at once). Every drain, latency and one-job
row then runs for both, the release first and this tree second, row by row and round by round
(A B A B ...), so a noisy spell on the machine weighs on both alike. Each figure is printed for
both with their ratio, and a row more than 10% worse is flagged. A row the release cannot run
shows n/a with the reason.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import peers, subject
from bench.common import HERE, ROOT, Subject, measure, percentile
from bench.stores import Scratch, fresh_store, postgres_available

CACHE = ROOT / ".bench-cache"
CHANGELOG = ROOT / "CHANGELOG.md"
#: A release's heading in CHANGELOG.md: `## 0.1.0 (commit d3eb84f, 2026-11-28)`.
RELEASE = re.compile(r"^## v?(\d+\.\d+\.\d+\S*) \(commit ([0-9a-f]{7,40})\b", re.MULTILINE)
#: A row this much worse than the release's is flagged.
WORSE = 1.10
KINDS = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
ROWS = ("drain", "hosts", "latency", "enqueue")


class BadRef(Exception):
    """REF names neither a release in CHANGELOG.md nor a commit of this repository."""


def releases(changelog: str) -> dict[str, str]:
    """Version -> commit of each release CHANGELOG.md names."""
    return {version: commit for version, commit in RELEASE.findall(changelog)}


def git(*args: str) -> str:
    run = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if run.returncode != 0:
        raise BadRef(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "git failed")
    return run.stdout.strip()


def resolve(ref: str, changelog: str | None = None) -> tuple[str, str]:
    """(the full commit, a label: "0.1.0 (d3eb84f)" or the short commit) of REF."""
    if changelog is None:
        changelog = CHANGELOG.read_text() if CHANGELOG.exists() else ""
    named = releases(changelog)
    version = ref.removeprefix("v") if ref.removeprefix("v") in named else None
    try:
        commit = git(
            "rev-parse", "--verify", "--quiet", f"{named.get(version or '', ref)}^{{commit}}"
        )
    except BadRef:
        known = ", ".join(named) or "none"
        raise BadRef(
            f"--against {ref}: neither a release of CHANGELOG.md (known: {known}) "
            "nor a commit of this repository"
        ) from None
    if version is None:
        version = next((v for v, c in named.items() if commit.startswith(c)), None)
    return commit, f"{version} ({commit[:7]})" if version else commit[:7]


def this_tree() -> Subject:
    """This tree's own queuectl, named by its commit and whether it has changes on top."""
    try:
        head = git("rev-parse", "--short=7", "HEAD")
        changed = bool(git("status", "--porcelain", "--untracked-files=no"))
    except BadRef:
        return HERE
    return Subject(
        f"this tree ({head}{' + changes' if changed else ''})", HERE.python, HERE.queuectl
    )


def install(commit: str, label: str, log: Callable[[str], None] = print) -> Subject:
    """The queuectl of `commit`, installed (once) in its own virtual environment."""
    home = CACHE / commit
    venv = home / "venv"
    done = home / "installed"
    if not done.exists():
        log(f"installing {label} into {venv}")
        shutil.rmtree(home, ignore_errors=True)
        tree = home / "src"
        tree.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                f"{tree}[postgres]",
            ],
            check=True,
        )
        done.write_text(commit + "\n")
    return Subject(label, str(venv / "bin" / "python"), str(venv / "bin" / "queuectl"))


@dataclass
class Measurement:
    """One thing measured for each subject in turn: its key, the row group it belongs to, and
    how one round of it runs for a subject."""

    key: str
    group: str
    kind: str | None
    run: Callable[[Subject], Any]


def measurements(args: Any, scratch: Scratch, timeout_s: float) -> list[Measurement]:
    found: list[Measurement] = []

    def on_store(kind: str, body: Callable[[Subject, str], Any]) -> Callable[[Subject], Any]:
        def go(who: Subject) -> Any:
            with fresh_store(kind, scratch, who) as target:
                return body(who, target)

        return go

    for kind in KINDS:
        for workers in args.workers:
            found.append(
                Measurement(
                    f"drain {kind} W={workers}",
                    "drain",
                    kind,
                    on_store(
                        kind,
                        lambda who, t, w=workers: subject.drain(
                            t, args.n, w, scratch, timeout_s, subject=who
                        ),
                    ),
                )
            )
    found.append(
        Measurement(
            "hosts",
            "hosts",
            "postgres",
            on_store(
                "postgres",
                lambda who, t: subject.drain_hosts(
                    t, args.n, args.hosts, args.host_workers, scratch, timeout_s, subject=who
                ),
            ),
        )
    )
    for kind in KINDS:
        for via in ("api", "cli"):
            found.append(
                Measurement(
                    f"one-by-one {kind} {via}",
                    "latency",
                    kind,
                    on_store(
                        kind,
                        lambda who, t, via=via: subject.one_by_one(
                            t,
                            args.latency_samples,
                            args.latency_pause,
                            scratch,
                            who,
                            cli=via == "cli",
                        ),
                    ),
                )
            )
    found.append(
        Measurement(
            "single enqueue",
            "enqueue",
            "sqlite",
            on_store("sqlite", lambda who, t: subject.single_enqueue(t, args.single_repeat, who)),
        )
    )
    return found


def merge(kept: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """Rounds of one measurement of one subject: drains keep their best round, one-by-one
    samples are pooled, one enqueue keeps its best median; a failure stands only until a
    round succeeds."""
    if kept is None or "error" in kept or "skipped" in kept or "timeout" in kept:
        return new
    if "error" in new or "skipped" in new or "timeout" in new:
        return kept
    if "start_ms" in new:
        return {key: kept[key] + new[key] for key in ("start_ms", "wall_ms")}
    key = "enqueue_ms" if "enqueue_ms" in new else "seconds"
    return new if new[key] < kept[key] else kept


def run(args: Any) -> dict[str, Any]:
    """Every measurement for both subjects, in turns; the raw cells, by measurement and side."""
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    commit, label = resolve(args.against)
    base = install(commit, label, log)
    head = this_tree()
    timeout_s = 30 + args.n * 0.03
    wanted_kinds = {kind for kind in KINDS if not args.only or f"queuectl-{kind}" in args.only}
    rows = set(args.rows or ROWS)
    pg_missing = postgres_available() if "postgres" in wanted_kinds else None
    scratch = Scratch()
    cells: dict[str, dict[str, Any]] = {}
    limits: dict[str, float] = {}
    try:
        chosen = [
            m
            for m in measurements(args, scratch, timeout_s)
            if m.group in rows and m.kind in wanted_kinds
        ]
        # The spawn limit each drain is compared with, once per round as well.
        totals = sorted(
            {
                w
                for m in chosen
                if m.group == "drain"
                for w in args.workers
                if m.key.endswith(f"W={w}")
            }
            | (
                {args.hosts * args.host_workers}
                if any(m.group == "hosts" for m in chosen)
                else set()
            )
        )
        for round_ in range(args.repeat):
            for total in totals:
                log(f"xargs -P {total} (round {round_ + 1}/{args.repeat})")
                found = measure(lambda t=total: peers.xargs_drain(args.n, t, timeout_s))
                if "seconds" in found:
                    limits[str(total)] = min(limits.get(str(total), 1e9), found["seconds"])
            for m in chosen:
                for side, who in (("a", base), ("b", head)):
                    if m.kind == "postgres" and pg_missing:
                        cells.setdefault(m.key, {})[side] = {"skipped": pg_missing}
                        continue
                    log(f"{m.key}: {who.name} (round {round_ + 1}/{args.repeat})")
                    found = measure(lambda m=m, who=who: m.run(who))
                    cells.setdefault(m.key, {})[side] = merge(cells.get(m.key, {}).get(side), found)
    finally:
        scratch.close()
    return {
        "a": {"name": base.name, "commit": commit, "python": base.python},
        "b": {"name": head.name, "python": head.python},
        "cells": cells,
        "limits": limits,
        "meta": {
            "n": args.n,
            "workers": args.workers,
            "hosts": args.hosts,
            "host_workers": args.host_workers,
            "rounds": args.repeat,
            "latency_samples": args.latency_samples,
            "latency_pause_s": args.latency_pause,
            "single_repeat": args.single_repeat,
            "took_s": round(time.perf_counter() - began, 1),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }


def why_not(cell: Any) -> str | None:
    if not isinstance(cell, dict):
        return "not run"
    for key in ("skipped", "error", "timeout"):
        if key in cell:
            return str(cell[key])
    return None


@dataclass
class Figure:
    """One row of the comparison: what it is, and each side's value (lower is better) and
    text, or why there is none."""

    label: str
    a: float | None
    b: float | None
    a_text: str
    b_text: str

    @property
    def ratio(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        if self.a == 0:
            return None if self.b == 0 else float("inf")
        return self.b / self.a

    @property
    def worse(self) -> bool:
        return self.ratio is not None and self.ratio > WORSE


def _ms(values: list[float]) -> tuple[float, str]:
    p50 = percentile(values, 0.5)
    return p50, f"{p50:g} / {percentile(values, 0.95):g} ms"


def figures(results: dict[str, Any]) -> list[Figure]:
    """The rows to show, from the raw cells, in a fixed order."""
    meta, cells, limits = results["meta"], results["cells"], results["limits"]
    rows: list[Figure] = []

    def add(label: str, key: str, value: Callable[[dict[str, Any]], tuple[float, str]]) -> None:
        cell = cells.get(key)
        if cell is None:
            return
        sides: list[tuple[float | None, str]] = []
        for side in ("a", "b"):
            reason = why_not(cell.get(side))
            sides.append((None, f"n/a ({reason})") if reason else value(cell[side]))
        rows.append(Figure(label, sides[0][0], sides[1][0], sides[0][1], sides[1][1]))

    def drain(limit_key: str) -> Callable[[dict[str, Any]], tuple[float, str]]:
        def text(cell: dict[str, Any]) -> tuple[float, str]:
            seconds = cell["seconds"]
            shown = f"{seconds:.2f} s ({meta['n'] / seconds:,.0f}/s)"
            if limit_key in limits:
                shown += f" = {seconds / limits[limit_key]:.2f}x"
            return seconds, shown

        return text

    n = f"{meta['n']:,}"
    for kind, name in KINDS.items():
        for workers in meta["workers"]:
            add(
                f"drain of {n} `true` jobs, {name}, W={workers} (x `xargs -P {workers}`)",
                f"drain {kind} W={workers}",
                drain(str(workers)),
            )
    total = meta["hosts"] * meta["host_workers"]
    add(
        f"drain of {n}, PostgreSQL, {meta['hosts']} runners of {meta['host_workers']} workers, "
        f"distinct hosts (x `xargs -P {total}`)",
        "hosts",
        drain(str(total)),
    )
    for kind, name in KINDS.items():
        add(
            f"enqueue-to-start through `Queue.enqueue`, {name} (p50 / p95)",
            f"one-by-one {kind} api",
            lambda c: _ms(c["start_ms"]),
        )
        add(
            f"enqueue-to-start through `queuectl enqueue`, {name} (p50 / p95)",
            f"one-by-one {kind} cli",
            lambda c: _ms(c["start_ms"]),
        )
    for kind, name in KINDS.items():
        for via, how in (("api", "`Queue.enqueue`"), ("cli", "`queuectl enqueue`")):
            add(
                f"one `true` job's own wall into an idle runner, {name}, via {how} (p50 / p95)",
                f"one-by-one {kind} {via}",
                lambda c: _ms(c["wall_ms"]),
            )
    add(
        "one `queuectl enqueue`, SQLite (median, x `python -c pass`)",
        "single enqueue",
        lambda c: (c["enqueue_ms"], f"{c['enqueue_ms']:.1f} ms = {c['ratio']:.2f}x"),
    )
    return rows


def _ratio_text(figure: Figure) -> str:
    ratio = figure.ratio
    if ratio is None:
        return "n/a"
    return "inf" if ratio == float("inf") else f"{ratio:.2f}x"


def render(results: dict[str, Any]) -> str:
    """The comparison for the terminal, then the same as a table in the README's format."""
    meta, a, b = results["meta"], results["a"]["name"], results["b"]["name"]
    rows = figures(results)
    lines = [
        f"queuectl bench --against: {a} (A) and {b} (B), in turns, {meta['rounds']} round(s); "
        f"N={meta['n']:,}, {meta['latency_samples']} one-by-one jobs a round, "
        f"{meta['took_s']:.0f}s",
        "Drains: best round; latencies and walls: every round's jobs pooled (whole ms, as the "
        "store keeps them); B/A over 1.10 is flagged WORSE.",
        "",
    ]
    width = max((len(r.label) for r in rows), default=10)
    side = max([len(r.a_text) for r in rows] + [len(r.b_text) for r in rows] + [8])
    lines.append(f"  {'figure':<{width}}  {'A':<{side}}  {'B':<{side}}  B/A")
    for row in rows:
        flag = "  WORSE" if row.worse else ""
        lines.append(
            f"  {row.label:<{width}}  {row.a_text:<{side}}  {row.b_text:<{side}}  "
            f"{_ratio_text(row)}{flag}"
        )
    worse = [r.label for r in rows if r.worse]
    lines += [
        "",
        f"{len(worse)} row(s) more than 10% worse than {a}"
        + (": a bug unless the README's note says what it bought." if worse else "."),
        "",
        "README table:",
        "",
        *readme_table(results, rows),
    ]
    return "\n".join(lines)


def readme_table(results: dict[str, Any], rows: list[Figure] | None = None) -> list[str]:
    """The rows as the README's benchmark tables are written: one column per version."""
    rows = figures(results) if rows is None else rows
    a, b = results["a"]["name"], results["b"]["name"]
    lines = [f"| figure | {a} | {b} | ratio |", "| --- | --- | --- | --- |"]
    for row in rows:
        ratio = _ratio_text(row)
        lines.append(
            f"| {row.label} | {row.a_text} | {row.b_text} | "
            + (f"**{ratio}**" if row.worse else ratio)
            + " |"
        )
    return lines
