"""`python -m bench.profiling`: where a queuectl runner's time goes during a drain.

Starts a runner (`--workers`), records it with py-spy (`pip install py-spy`) while it drains N
`true` jobs, and prints the runner's CPU per job and the share of samples per function.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import BIN, CLK_TCK, HERE, child_pids, cpu_ticks
from bench.stores import Scratch, fresh_store
from bench.subject import runner, timed_drain


def leaf_table(raw: Path, top: int) -> list[tuple[str, float, float]]:
    """(function, self %, inclusive %) from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
            if " (" in f
            else f
            for f in stack.split(";")
        ]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    rows = [(name, 100 * own[name] / total, 100 * inclusive[name] / total) for name in inclusive]
    rows.sort(key=lambda r: -r[2])
    return rows[:top]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profiling", description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument(
        "--idle", action="store_true", help="count samples of waiting threads too (wall time)"
    )
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "runner-profile.txt",
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(BIN / "py-spy")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Scratch()
    try:
        with (
            fresh_store(args.backend, scratch) as target,
            runner(target, args.workers, scratch.file("runner", ".log")) as process,
        ):
            pids = [process.pid, *child_pids(process.pid)]
            spy = subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(process.pid),
                    "--rate",
                    str(args.rate),
                    "--format",
                    "raw",
                    "--output",
                    str(args.out),
                    "--nonblocking",
                    *(["--idle"] if args.idle else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)
            before = sum(cpu_ticks(pid) for pid in pids)
            seconds = timed_drain(HERE, target, args.n, 600)
            after = [cpu_ticks(pid) for pid in pids]
            spy.send_signal(2)
            spy.wait(30)
        cpu_s = (sum(after) - before) / CLK_TCK
        print(
            f"drain of {args.n} jobs, W={args.workers}, {args.backend}: {seconds:.2f}s "
            f"({args.n / seconds:.0f}/s); runner+watchdog CPU {cpu_s:.2f}s = "
            f"{1000 * cpu_s / args.n:.2f} ms per job"
        )
        print(f"\n{'function (file)':<70}{'self%':>7}{'incl%':>7}")
        for name, self_pct, incl_pct in leaf_table(args.out, args.top):
            print(f"{name[:69]:<70}{self_pct:>7.1f}{incl_pct:>7.1f}")
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
