"""`python -m bench --against REF [REF...]`: this tree beside earlier queuectls, in turns.

A REF is a release's version as CHANGELOG.md names it (`0.1.0`) or any commit. Its tree is
installed, with the PostgreSQL extra, into a virtual environment of its own under
`.bench-cache/COMMIT/` (kept: a second run starts at once). Every drain, latency and one-job
row then runs for each REF and for this tree, last, row by row and round by round (A B A B
..., or A B C A B C ...), so a noisy spell on the machine weighs on all of them alike. Each
figure is printed for each with this tree's ratio to each REF, and a row of this tree more than
10% worse than a REF's is flagged. A row a REF cannot run shows n/a with the reason.
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
#: Installed commits kept in CACHE, the most recently used.
KEEP = 4
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
    done.touch()
    prune(keep=KEEP)
    return Subject(label, str(venv / "bin" / "python"), str(venv / "bin" / "queuectl"))


def prune(keep: int) -> None:
    """Remove all but the `keep` environments used last (each is about 60 MB, and every
    commit tested makes one)."""
    used = sorted(CACHE.glob("*/installed"), key=lambda done: done.stat().st_mtime, reverse=True)
    for done in used[keep:]:
        shutil.rmtree(done.parent, ignore_errors=True)


@dataclass
class Measurement:
    """One thing measured for each subject in turn: its key, the row group it belongs to, its
    store, how one round of it runs for a subject, and the `xargs -P` it is compared with."""

    key: str
    group: str
    kind: str
    run: Callable[[Subject], Any]
    limit: int | None = None


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
                    limit=workers,
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
            limit=args.hosts * args.host_workers,
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
    """Every measurement for each subject (the REFs in their order, then this tree), in turns;
    the raw cells, by measurement, in the subjects' order."""
    began = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    refs = [resolve(ref) for ref in args.against]
    subjects = [install(commit, label, log) for commit, label in refs] + [this_tree()]
    timeout_s = 30 + args.n * 0.03
    kinds = {kind for kind in KINDS if not args.only or f"queuectl-{kind}" in args.only}
    pg_missing = postgres_available() if "postgres" in kinds else None
    scratch = Scratch()
    cells: dict[str, list[Any]] = {}
    limits: dict[str, float] = {}
    huey: dict[str, float] = {}
    with_huey = (not args.only or "huey" in args.only) and peers.huey_available() is None
    try:
        chosen = [
            m
            for m in measurements(args, scratch, timeout_s)
            if m.group in (args.rows or ROWS) and m.kind in kinds
        ]
        for round_ in range(args.repeat):
            of = f"(round {round_ + 1}/{args.repeat})"
            # The spawn limit each drain is compared with, in the same rounds.
            for total in sorted({m.limit for m in chosen if m.limit}):
                log(f"xargs -P {total} {of}")
                found = measure(lambda t=total: peers.xargs_drain(args.n, t, timeout_s))
                if "seconds" in found:
                    limits[str(total)] = min(limits.get(str(total), 1e9), found["seconds"])
            # The peer every drain must stay ahead of, at each W of the drains, in the same
            # rounds (unless not installed, or --only leaves it out).
            for workers in sorted({m.limit for m in chosen if m.group == "drain"}):
                if with_huey:
                    log(f"huey W={workers} {of}")
                    found = measure(
                        lambda w=workers: peers.huey_drain(args.n, w, scratch, timeout_s)
                    )
                    if "seconds" in found:
                        key = str(workers)
                        huey[key] = min(huey.get(key, 1e9), found["seconds"])
            for m in chosen:
                row = cells.setdefault(m.key, [None] * len(subjects))
                for i, who in enumerate(subjects):
                    if m.kind == "postgres" and pg_missing:
                        row[i] = {"skipped": pg_missing}
                        continue
                    log(f"{m.key}: {who.name} {of}")
                    row[i] = merge(row[i], measure(lambda m=m, who=who: m.run(who)))
    finally:
        scratch.close()
    return {
        "subjects": [
            {"name": who.name, "python": who.python, "commit": commit}
            for who, commit in zip(subjects, [c for c, _ in refs] + [None], strict=True)
        ],
        "cells": cells,
        "limits": limits,
        "huey": huey,
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
    """One row of the comparison: what it is, and each subject's value (lower is better) and
    text, or why there is none; this tree is the last."""

    label: str
    values: list[float | None]
    texts: list[str]

    def ratios(self) -> list[float | None]:
        """This tree's value over each earlier subject's."""
        ours = self.values[-1]
        found: list[float | None] = []
        for theirs in self.values[:-1]:
            if ours is None or theirs is None:
                found.append(None)
            elif theirs == 0:
                found.append(None if ours == 0 else float("inf"))
            else:
                found.append(ours / theirs)
        return found

    @property
    def worse(self) -> bool:
        """More than WORSE times an earlier subject's."""
        return any(r is not None and r > WORSE for r in self.ratios())


def _ms(values: list[float], share: float) -> tuple[float, str]:
    at = percentile(values, share)
    return at, f"{at:g} ms"


def figures(results: dict[str, Any]) -> list[Figure]:
    """The rows to show, from the raw cells, in a fixed order."""
    meta, cells, limits = results["meta"], results["cells"], results["limits"]
    rows: list[Figure] = []

    def add(label: str, key: str, value: Callable[[dict[str, Any]], tuple[float, str]]) -> None:
        if key not in cells:
            return
        values: list[float | None] = []
        texts: list[str] = []
        for cell in cells[key]:
            reason = why_not(cell)
            number, text = (None, f"n/a ({reason})") if reason else value(cell)
            values.append(number)
            texts.append(text)
        rows.append(Figure(label, values, texts))

    def drain(cell: dict[str, Any]) -> tuple[float, str]:
        return cell["seconds"], f"{cell['seconds']:.2f} s"

    def spawn_limit(workers: int) -> str:
        seconds = limits.get(str(workers))
        return f"; `xargs -P {workers}`: {seconds:.2f} s" if seconds else ""

    def peer(workers: int) -> str:
        seconds = results.get("huey", {}).get(str(workers))
        return f"; huey: {seconds:.2f} s" if seconds else ""

    n = f"{meta['n']:,}"
    for kind, name in KINDS.items():
        for workers in meta["workers"]:
            add(
                f"drain of {n} `true` jobs, {name}, W={workers}{spawn_limit(workers)}"
                f"{peer(workers)}",
                f"drain {kind} W={workers}",
                drain,
            )
    total = meta["hosts"] * meta["host_workers"]
    add(
        f"drain of {n}, PostgreSQL, {meta['hosts']} runners of {meta['host_workers']} workers, "
        f"distinct hosts{spawn_limit(total)}",
        "hosts",
        drain,
    )
    for kind, name in KINDS.items():
        for via, how in (("api", "`Queue.enqueue`"), ("cli", "`queuectl enqueue`")):
            for label, share in (("p50", 0.5), ("p95", 0.95)):
                add(
                    f"enqueue-to-start through {how}, {name}, {label}",
                    f"one-by-one {kind} {via}",
                    lambda c, share=share: _ms(c["start_ms"], share),
                )
    for kind, name in KINDS.items():
        for via, how in (("api", "`Queue.enqueue`"), ("cli", "`queuectl enqueue`")):
            for label, share in (("p50", 0.5), ("p95", 0.95)):
                add(
                    f"one `true` job's own wall into an idle runner, {name}, via {how}, {label}",
                    f"one-by-one {kind} {via}",
                    lambda c, share=share: _ms(c["wall_ms"], share),
                )
    add(
        "one `queuectl enqueue`, SQLite (median)",
        "single enqueue",
        lambda c: (c["enqueue_ms"], f"{c['enqueue_ms']:.1f} ms"),
    )
    return rows


def _ratio_text(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return "inf" if ratio == float("inf") else f"{ratio:.2f}x"


def _names(results: dict[str, Any]) -> list[str]:
    return [who["name"] for who in results["subjects"]]


def _ratio_heads(names: list[str]) -> list[str]:
    return [f"/ {name.split(' (')[0]}" for name in names[:-1]]


def render(results: dict[str, Any]) -> str:
    """The comparison for the terminal, then the same as a table in bench/README.md's format."""
    meta, names = results["meta"], _names(results)
    rows = figures(results)
    lines = [
        f"queuectl bench --against: {', '.join(names)}, in turns, {meta['rounds']} round(s); "
        f"N={meta['n']:,}, {meta['latency_samples']} one-by-one jobs a round, "
        f"{meta['took_s']:.0f}s",
        "Drains: best round; latencies and walls: every round's jobs pooled (whole ms, as the "
        f"store keeps them); this tree over an earlier one above {WORSE:.2f}x is flagged WORSE.",
        "",
    ]
    width = max([len(r.label) for r in rows] + [6])
    side = max([len(text) for r in rows for text in r.texts] + [len(n) for n in names])
    heads = _ratio_heads(names)
    lines.append(
        f"  {'figure':<{width}}"
        + "".join(f"  {name:<{side}}" for name in names)
        + "".join(f"  {head:<8}" for head in heads)
    )
    for row in rows:
        lines.append(
            f"  {row.label:<{width}}"
            + "".join(f"  {text:<{side}}" for text in row.texts)
            + "".join(f"  {_ratio_text(r):<8}" for r in row.ratios())
            + ("  WORSE" if row.worse else "")
        )
    worse = [r.label for r in rows if r.worse]
    lines += [
        "",
        f"{len(worse)} row(s) more than 10% worse than {' or '.join(names[:-1])}"
        + (": each a bug unless bench/README.md says what it bought." if worse else "."),
        "",
        "bench/README.md table:",
        "",
        *readme_table(results, rows),
    ]
    return "\n".join(lines)


def readme_table(results: dict[str, Any], rows: list[Figure] | None = None) -> list[str]:
    """The rows as bench/README.md writes them, one figure a cell: a column per version, then
    this tree over each earlier one (bold past WORSE)."""
    rows = figures(results) if rows is None else rows
    names = _names(results)
    columns = ["figure", *names, *_ratio_heads(names)]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for row in rows:
        ratios = [
            f"**{_ratio_text(r)}**" if r is not None and r > WORSE else _ratio_text(r)
            for r in row.ratios()
        ]
        lines.append("| " + " | ".join([row.label, *row.texts, *ratios]) + " |")
    return lines
