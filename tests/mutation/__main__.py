"""Run the planted bugs of `mutants.py`, one at a time, and report which the tests catch.

    python -m tests.mutation [-k WORDS] [--list] [--baseline]

Each mutant is applied to a scratch copy of src/ (never the working tree), put first on
PYTHONPATH for pytest and every process it starts (the CLI, runners, watchdogs), and its
selection of tests runs with -x: a failure kills the mutant. Exit status 1 if the score is
under --min-score (90 by default) or an entry is stale.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.mutation.mutants import MUTANTS, SRC, Mutant, stale

ROOT = SRC.parent.parent


def _copy_tree(into: Path) -> Path:
    src = into / "src"
    shutil.copytree(SRC.parent, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return src


def _run(mutant: Mutant, src: Path, timeout_s: float) -> tuple[str, float, str]:
    """'killed', 'survived' or 'timeout' (a hang counts as caught), the seconds it took, and
    the test that caught it."""
    path = src / "queuectl" / mutant.file
    original = path.read_text()
    if mutant.old:
        path.write_text(original.replace(mutant.old, mutant.new, 1))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        ),
        "PYTHONDONTWRITEBYTECODE": "",
        "QUEUECTL_REQUIRE_PG": os.environ.get("QUEUECTL_REQUIRE_PG", "1"),
    }
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        *mutant.tests,
    ]
    began = time.monotonic()
    by = ""
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, timeout=timeout_s, check=False
        )
        verdict = "survived" if done.returncode == 0 else "killed"
        failed = [
            line.split(" - ")[0].removeprefix("FAILED ").removeprefix("ERROR ")
            for line in done.stdout.decode(errors="replace").splitlines()
            if line.startswith(("FAILED ", "ERROR "))
        ]
        by = failed[0] if failed else ""
        if done.returncode not in (0, 1):  # collection errors, usage: not a caught bug
            verdict = f"error {done.returncode}"
            sys.stderr.write(done.stdout.decode(errors="replace")[-3000:])
    except subprocess.TimeoutExpired:
        verdict = "timeout"
    finally:
        path.write_text(original)
    return verdict, time.monotonic() - began, by


def _loads_the_copy(src: Path) -> bool:
    """Whether a process started with the copy on PYTHONPATH imports queuectl from it."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, "-c", "import queuectl; print(queuectl.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().startswith(str(src))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("-k", help="only the mutants whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="run each selection on the unchanged code instead: all must pass, or a kill means "
        "nothing",
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant")
    parser.add_argument("--min-score", type=float, default=90.0)
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if args.k is None or args.k in m.name]
    if args.list:
        for mutant in chosen:
            print(f"{mutant.name:40} {mutant.file}: {mutant.description}")
        return 0
    bad = stale(chosen)
    for mutant, count in bad:
        print(f"STALE {mutant.name}: its text occurs {count} times in {mutant.file}")
    chosen = [m for m in chosen if m not in {b for b, _ in bad}]
    if args.baseline:
        selections = dict.fromkeys(m.tests for m in chosen)
        chosen = [
            Mutant(" ".join(tests), "queue.py", "", "", "unchanged", tests) for tests in selections
        ]
    began = time.monotonic()
    verdicts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="queuectl-mutant-") as scratch:
        src = _copy_tree(Path(scratch))
        if not _loads_the_copy(src):
            print("error: the scratch copy is not what Python imports (PYTHONPATH ignored?)")
            return 1
        for n, mutant in enumerate(chosen, 1):
            verdict, took, by = _run(mutant, src, args.timeout)
            verdicts[mutant.name] = verdict
            if args.baseline:
                verdict = {"survived": "passed", "killed": "FAILED"}.get(verdict, verdict)
            print(
                f"[{n}/{len(chosen)}] {verdict:9} {took:6.1f}s  {mutant.name}: "
                f"{mutant.description}" + (f"\n    by {by}" if by else ""),
                flush=True,
            )
    took = time.monotonic() - began
    caught = [name for name, v in verdicts.items() if v in ("killed", "timeout")]
    if args.baseline:
        failing = [name for name, v in verdicts.items() if v != "survived"]
        for name in failing:
            print(f"failing on the unchanged code: {name}")
        passing = len(verdicts) - len(failing)
        print(f"baseline: {passing}/{len(verdicts)} selections pass in {took:.0f}s")
        return 1 if failing or bad else 0
    score = 100 * len(caught) / len(verdicts) if verdicts else 100.0
    survivors = [name for name in verdicts if name not in caught]
    if survivors:
        print("not caught: " + ", ".join(survivors))
    print(
        f"mutation score: {len(caught)}/{len(verdicts)} caught ({score:.1f}%) in {took:.0f}s; "
        f"{len(bad)} stale"
    )
    return 0 if score >= args.min_score and not bad else 1


if __name__ == "__main__":
    sys.exit(main())
