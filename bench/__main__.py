"""`python -m bench`: every measurement of the benchmark in one run, a table on stdout, JSON on disk.

Sizes: `--n`, `--workers`, `--latency-samples`, `--bulk`, `--stored`...; `--smoke` shrinks them
all for CI (N=50, no scale run) and skips what is not installed or not reachable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import against, exchange, peers, reads, subject
from bench.common import PYCACHE, measure
from bench.report import render, targets
from bench.stores import Scratch, fresh_store, postgres_available

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--n", type=int, default=2000, help="jobs per drain (default 2000)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[2, 4], help="worker counts (default 2 4)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        help="drain rounds, the best of each kept (default 1; with --against: rounds of every "
        "row, default 3)",
    )
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument(
        "--latency-pause", type=float, default=0.05, help="seconds between enqueues"
    )
    parser.add_argument(
        "--bulk", type=int, default=50_000, help="jobs per bulk-enqueue measurement"
    )
    parser.add_argument(
        "--single-repeat", type=int, default=15, help="runs of one `queuectl enqueue`"
    )
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--scale-jobs", type=int, default=1000)
    parser.add_argument(
        "--stored", type=int, default=1_000_000, help="other jobs in the scale store"
    )
    parser.add_argument("--scale-workers", type=int, default=4)
    parser.add_argument(
        "--reads-stored",
        type=int,
        nargs="+",
        default=[1_000_000],
        help="jobs stored for the reads (bench.reads; default 1000000), with the scale run",
    )
    parser.add_argument("--no-scale", action="store_true", help="no scale run, no reads")
    parser.add_argument(
        "--hosts", type=int, default=4, help="runners of distinct hosts on one PostgreSQL store"
    )
    parser.add_argument("--host-workers", type=int, default=2, help="workers of each of them")
    parser.add_argument(
        "--store-procs",
        type=int,
        nargs="+",
        default=[4, 16],
        help="processes of the store-alone measurement (python -m bench.exchange)",
    )
    parser.add_argument("--store-batch", type=int, default=exchange.BATCH)
    parser.add_argument("--store-seconds", type=float, default=exchange.SECONDS)
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="SYSTEM",
        help="limit to these systems: "
        + ", ".join(["xargs", "queuectl-sqlite", "queuectl-postgres", "huey", "rq"]),
    )
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes for CI: N=50, no scale run"
    )
    parser.add_argument(
        "--against",
        metavar="REF",
        nargs="+",
        help="compare with each REF (a release's version in CHANGELOG.md, or a commit), "
        "installed under .bench-cache/: every drain, latency and one-job row for each and this "
        "tree, in turns",
    )
    parser.add_argument(
        "--rows",
        nargs="+",
        choices=against.ROWS,
        help="with --against: only these groups of rows (default all)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help=f"JSON file (default {DEFAULT_OUTPUT}; against.json beside it with --against)",
    )
    args = parser.parse_args(argv)
    if args.output is None:
        args.output = DEFAULT_OUTPUT.with_name(
            "against.json" if args.against else DEFAULT_OUTPUT.name
        )
    if args.smoke:
        args.n, args.workers, args.latency_samples, args.latency_pause = 50, [2], 5, 0.02
        args.bulk, args.single_repeat, args.idle_seconds, args.no_scale = 1000, 2, 1.0, True
        args.store_procs, args.store_seconds = [2], 0.5
        if args.repeat is None:
            args.repeat = 2 if args.against else 1
    if args.repeat is None:
        args.repeat = 3 if args.against else 1
    return args


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("queuectl", "huey", "rq", "redis", "psycopg"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def compare(args: argparse.Namespace) -> int:
    """`--against REF`: the comparison, on stdout and in its JSON file."""
    try:
        results = against.run(args)
    except against.BadRef as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(against.render(results))
    print(f"\nJSON: {args.output}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.against:
        return compare(args)
    began = time.perf_counter()
    wanted = set(args.only or ["xargs", "queuectl-sqlite", "queuectl-postgres", "huey", "rq"])
    unavailable = {
        "queuectl-postgres": postgres_available() if "queuectl-postgres" in wanted else "not asked",
        "huey": peers.huey_available() if "huey" in wanted else "not asked",
        "rq": peers.rq_available() if "rq" in wanted else "not asked",
        "xargs": None if "xargs" in wanted else "not asked",
        "queuectl-sqlite": None if "queuectl-sqlite" in wanted else "not asked",
    }
    timeout_s = 30 + args.n * 0.03  # each drain's bound
    scratch = Scratch()
    results: dict[str, Any] = {
        "drain": {},
        "latency": {},
        "latency_cli": {},
        "enqueue": {},
        "idle_cpu": {},
        "scale": {},
        "reads": {},
        "flow": {},
        "array_flow": {},
        "counters": {},
        "hosts": {},
        "store_alone": {},
    }

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.1f}s] {message}", file=sys.stderr, flush=True)

    def on_store(kind: str, run: Callable[[str], Any]) -> Callable[[], Any]:
        def go() -> Any:
            with fresh_store(kind, scratch) as target:
                return run(target)

        return go

    drains: dict[str, Callable[[int], Callable[[], Any]]] = {
        "xargs": lambda w: lambda: peers.xargs_drain(args.n, w, timeout_s),
        "queuectl-sqlite": lambda w: on_store(
            "sqlite", lambda t: subject.drain(t, args.n, w, scratch, timeout_s)
        ),
        "queuectl-postgres": lambda w: on_store(
            "postgres", lambda t: subject.drain(t, args.n, w, scratch, timeout_s)
        ),
        "huey": lambda w: lambda: peers.huey_drain(args.n, w, scratch, timeout_s),
        "rq": lambda w: lambda: peers.rq_drain(args.n, w, scratch, timeout_s),
    }
    try:
        # Drains: rounds over every system in turn, so a noisy spell hits all of them alike.
        for system in drains:
            results["drain"][system] = {}
        for round_ in range(args.repeat):
            for workers in args.workers:
                for system, make in drains.items():
                    cell = results["drain"][system]
                    if unavailable[system]:
                        cell[str(workers)] = {"skipped": unavailable[system]}
                        continue
                    log(f"drain {system} W={workers} (round {round_ + 1}/{args.repeat})")
                    value = measure(make(workers))
                    if "seconds" in value:
                        value = {
                            "seconds": round(value["seconds"], 4),
                            "per_s": round(args.n / value["seconds"], 1),
                        }
                    best = cell.get(str(workers))
                    if (
                        best is None
                        or "seconds" not in best
                        or value.get("seconds", 1e9) < best["seconds"]
                    ):
                        cell[str(workers)] = value
        latencies: dict[str, Callable[[], Any]] = {
            "queuectl-sqlite": on_store(
                "sqlite",
                lambda t: subject.latency(t, args.latency_samples, args.latency_pause, scratch),
            ),
            "queuectl-postgres": on_store(
                "postgres",
                lambda t: subject.latency(t, args.latency_samples, args.latency_pause, scratch),
            ),
            "huey": lambda: peers.huey_latency(args.latency_samples, args.latency_pause, scratch),
            "rq": lambda: peers.rq_latency(args.latency_samples, args.latency_pause, scratch),
        }
        for system, run in latencies.items():
            log(f"latency {system}")
            results["latency"][system] = (
                {"skipped": unavailable[system]} if unavailable[system] else measure(run)
            )
        for kind, system in (("sqlite", "queuectl-sqlite"), ("postgres", "queuectl-postgres")):
            log(f"latency {system} through queuectl enqueue")
            results["latency_cli"][system] = (
                {"skipped": unavailable[system]}
                if unavailable[system]
                else measure(
                    on_store(
                        kind,
                        lambda t: subject.latency(
                            t, args.latency_samples, args.latency_pause, scratch, cli=True
                        ),
                    )
                )
            )
        enqueue: dict[str, Any] = {"enqueue_many": {}, "enqueue_file": {}}
        for kind, system in (("sqlite", "queuectl-sqlite"), ("postgres", "queuectl-postgres")):
            if unavailable[system]:
                enqueue["enqueue_many"][kind] = enqueue["enqueue_file"][kind] = {
                    "skipped": unavailable[system]
                }
                continue
            log(f"enqueue rates {kind}")
            enqueue["enqueue_many"][kind] = measure(
                on_store(kind, lambda t: subject.enqueue_many_rate(t, args.bulk))
            )
            enqueue["enqueue_file"][kind] = measure(
                on_store(kind, lambda t: subject.enqueue_file_rate(t, args.bulk))
            )
        log("single enqueue")
        enqueue["single"] = measure(
            on_store("sqlite", lambda t: subject.single_enqueue(t, args.single_repeat))
        )
        results["enqueue"] = enqueue
        log(f"idle runner CPU over {args.idle_seconds:g}s")
        results["idle_cpu"] = measure(
            on_store("sqlite", lambda t: subject.idle_cpu(t, args.idle_seconds, scratch))
        )
        if unavailable["queuectl-postgres"]:
            results["idle_cpu_postgres"] = {"skipped": unavailable["queuectl-postgres"]}
        else:
            log(f"idle runner CPU and transactions over {args.idle_seconds:g}s, PostgreSQL")
            results["idle_cpu_postgres"] = measure(
                on_store("postgres", lambda t: subject.idle_cpu(t, args.idle_seconds, scratch))
            )
        hosts, host_workers = args.hosts, args.host_workers
        total = hosts * host_workers
        results["hosts"] = {"runners": hosts, "workers": host_workers}
        if unavailable["queuectl-postgres"] or unavailable["xargs"]:
            results["hosts"]["skipped"] = unavailable["queuectl-postgres"] or unavailable["xargs"]
        else:
            host_runs: dict[str, Callable[[], Any]] = {
                "xargs": lambda: peers.xargs_drain(args.n, total, timeout_s),
                "queuectl-postgres": on_store(
                    "postgres",
                    lambda t: subject.drain_hosts(
                        t, args.n, hosts, host_workers, scratch, timeout_s
                    ),
                ),
            }
            for round_ in range(args.repeat):
                for system, run in host_runs.items():
                    log(f"drain {system}, {hosts} hosts x {host_workers} (round {round_ + 1})")
                    value = measure(run)
                    best = results["hosts"].get(system)
                    if best is None or value.get("seconds", 1e9) < best.get("seconds", 1e9):
                        results["hosts"][system] = value
            cell = results["hosts"]
            if "seconds" in cell["xargs"] and "seconds" in cell["queuectl-postgres"]:
                cell["ratio"] = round(
                    cell["queuectl-postgres"]["seconds"] / cell["xargs"]["seconds"], 3
                )
        for kind, system in (("sqlite", "queuectl-sqlite"), ("postgres", "queuectl-postgres")):
            results["store_alone"][kind] = {}
            for procs in args.store_procs:
                if unavailable[system]:
                    results["store_alone"][kind][str(procs)] = {"skipped": unavailable[system]}
                    continue
                log(f"store alone {kind}, {procs} processes")
                results["store_alone"][kind][str(procs)] = measure(
                    lambda k=kind, p=procs: exchange.measure(
                        k, p, args.store_batch, args.store_seconds, scratch
                    )
                )
        flow_workers = max(args.workers)
        for kind, system in (("sqlite", "queuectl-sqlite"), ("postgres", "queuectl-postgres")):
            if unavailable[system]:
                results["flow"][kind] = {"skipped": unavailable[system]}
                results["array_flow"][kind] = {"skipped": unavailable[system]}
                results["counters"][kind] = {"skipped": unavailable[system]}
                continue
            log(f"drain {kind} W={flow_workers} with a concurrency limit of W, and without")
            results["flow"][kind] = measure(
                lambda k=kind: subject.flow(k, args.n, flow_workers, scratch, timeout_s)
            )
            log(f"drain {kind} W={flow_workers}: an array %W, and a queue limited to W")
            results["array_flow"][kind] = measure(
                lambda k=kind: subject.array_flow(k, args.n, flow_workers, scratch, timeout_s)
            )
            log(f"drain {kind} W={flow_workers} without the count triggers, and with them")
            results["counters"][kind] = measure(
                lambda k=kind: subject.counters(k, args.n, flow_workers, scratch, timeout_s)
            )
        if args.no_scale:
            results["scale"] = {"skipped": "--no-scale" if not args.smoke else "--smoke"}
            results["reads"] = {"skipped": "--no-scale" if not args.smoke else "--smoke"}
        else:
            log(f"scale: {args.scale_jobs} jobs with {args.stored:,} stored")
            results["scale"] = measure(
                lambda: subject.scale(
                    args.scale_jobs, args.stored, args.scale_workers, scratch, timeout_s
                )
            )
            for kind in ("sqlite", "postgres"):
                system = f"queuectl-{kind}"
                if unavailable[system]:
                    results["reads"][kind] = {"skipped": unavailable[system]}
                    continue
                results["reads"][kind] = {}
                for stored in args.reads_stored:
                    log(f"reads {kind} with {stored:,} stored")
                    results["reads"][kind][str(stored)] = measure(
                        lambda k=kind, n=stored: reads.measure(k, n, scratch)
                    )
    finally:
        scratch.close()
    results["meta"] = {
        "n": args.n,
        "workers": args.workers,
        "repeat": args.repeat,
        "latency_samples": args.latency_samples,
        "latency_pause_s": args.latency_pause,
        "bulk": args.bulk,
        "reads_stored": [] if args.no_scale else args.reads_stored,
        "smoke": args.smoke,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions(),
        "huey_poll": peers.HUEY_POLL,
        "drain_timeout_s": timeout_s,
        "pycache": str(PYCACHE),
        "caller_env_dont_write_bytecode": os.environ.get("PYTHONDONTWRITEBYTECODE"),
        "took_s": round(time.perf_counter() - began, 1),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    results["targets"] = targets(results)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(render(results))
    print(f"\nJSON: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
