"""`python -m bench.arrays`: the benchmark's "arrays" row alone, repeated: the drain of an array
limited to W at once (`--array 1-N%W`) over the drain of a queue limited to W, on each store.

Each repetition is `subject.array_flow` (best of two alternated rounds); the load average is
printed beside each ratio, as the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os

from bench import subject
from bench.common import measure
from bench.stores import Scratch, postgres_available


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.arrays", description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="jobs per drain (default 1000)")
    parser.add_argument("--workers", type=int, default=4, help="W (default 4)")
    parser.add_argument("--repeat", type=int, default=1, help="repetitions (default 1)")
    parser.add_argument(
        "--stores", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a drain may take")
    args = parser.parse_args(argv)
    kinds = [k for k in args.stores if k != "postgres" or postgres_available() is None]
    scratch = Scratch()
    try:
        for round_ in range(args.repeat):
            for kind in kinds:
                value = measure(
                    lambda k=kind: subject.array_flow(
                        k, args.n, args.workers, scratch, args.timeout
                    )
                )
                load = " ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"{round_ + 1} {kind:8} load {load}  {json.dumps(value)}", flush=True)
    finally:
        scratch.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
