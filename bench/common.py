"""Helpers shared by the benchmark's measurements: waiting, percentiles, process CPU, skips."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # the venv's bin folder: queuectl, huey_consumer, rq
QUEUECTL = str(BIN / "queuectl")
ROOT = Path(__file__).resolve().parent.parent  # the project, so workers can import `bench`
CLK_TCK = os.sysconf("SC_CLK_TCK")
# Child processes cache their bytecode as an installed queuectl would, even where the environment
# says PYTHONDONTWRITEBYTECODE (recompiling every module costs a CLI call ~40 ms), and keep the
# cache outside the source tree.
PYCACHE = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "queuectl-bench" / "pycache"
)
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(PYCACHE)


PROBE = str(Path(__file__).resolve().parent / "probe.py")


@dataclass(frozen=True)
class Subject:
    """An installed queuectl under measurement: its executable and the Python it runs on.

    What touches its store runs in that Python (bench/probe.py), so a release whose API or
    schema differs from this tree's is measured by its own code.
    """

    name: str
    python: str
    queuectl: str

    def probe(self, *args: object, timeout_s: float = 600) -> Any:
        """bench/probe.py's answer to `args`, run by this subject's Python."""
        run = subprocess.run(
            # -P: the probe's folder is not put on sys.path, so `queuectl` is the subject's.
            [self.python, "-P", PROBE, *map(str, args)],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=CHILD_ENV,
            timeout=timeout_s,
        )
        if run.returncode != 0:
            lines = run.stderr.strip().splitlines() or [f"exit {run.returncode}"]
            raise RuntimeError(f"{self.name}: probe {args[0]}: {lines[-1]}")
        return json.loads(run.stdout)


#: This tree: the queuectl installed in the bench's own environment.
HERE = Subject("this tree", sys.executable, QUEUECTL)


class Skip(Exception):
    """A measurement that cannot run here (a peer not installed, a server unreachable)."""


class TimedOut(Exception):
    """A drain that did not finish within its time bound."""

    def __init__(self, done: int, total: int, seconds: float) -> None:
        super().__init__(f"timed out after {seconds:.0f}s with {done}/{total} done")
        self.done, self.total, self.seconds = done, total, seconds


def wait_until(check: Callable[[], bool], timeout_s: float, interval_s: float = 0.01) -> bool:
    """Poll `check` until it is true or the time is up; whether it became true."""
    deadline = time.monotonic() + timeout_s
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


def wait_count(
    count: Callable[[], int], total: int, timeout_s: float, interval_s: float = 0.01
) -> float:
    """Seconds until `count()` reaches `total`, polled; TimedOut past `timeout_s`."""
    started = time.perf_counter()
    while True:
        done = count()
        elapsed = time.perf_counter() - started
        if done >= total:
            return elapsed
        if elapsed > timeout_s:
            raise TimedOut(done, total, elapsed)
        time.sleep(interval_s)


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile (no interpolation beyond the samples)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summary_ms(values_ms: list[float]) -> dict[str, float | int]:
    return {
        "p50_ms": round(statistics.median(values_ms), 2),
        "p95_ms": round(percentile(values_ms, 0.95), 2),
        "max_ms": round(max(values_ms), 2),
        "samples": len(values_ms),
    }


def cpu_ticks(pid: int) -> int:
    """utime + stime of one process, in clock ticks, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)


def child_pids(pid: int) -> list[int]:
    """The direct children of a process (Linux)."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                children += [int(word) for word in handle.read().split()]
    except OSError:
        pass
    return children


def stop_process(process: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def processes(
    commands: list[list[str]], log_path: Path, env: dict[str, str] | None = None
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Start background processes logging to one file; stop them all on the way out."""
    started: list[subprocess.Popen[bytes]] = []
    with open(log_path, "ab") as log:
        try:
            for command in commands:
                started.append(
                    subprocess.Popen(
                        command,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=log,
                        env={**CHILD_ENV, **(env or {})},
                        cwd=ROOT,
                    )
                )
            yield started
        finally:
            for process in started:
                if process.poll() is None:
                    process.terminate()
            for process in started:
                stop_process(process)


def median_walls_s(
    commands: list[list[str]], repeat: int, env: dict[str, str] | None = None
) -> list[float]:
    """The median wall time of each command over `repeat` rounds (after one warm-up round).
    Rounds run the commands in turn, so a burst of load elsewhere weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in commands]
    for n in range(repeat + 1):
        for command, spent in zip(commands, times, strict=True):
            started = time.perf_counter()
            subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                check=True,
                env=env or CHILD_ENV,
            )
            if n:
                spent.append(time.perf_counter() - started)
    return [statistics.median(spent) for spent in times]


def measure(run: Callable[[], Any]) -> dict[str, Any]:
    """One measurement; a skip, a timeout or a failure becomes its reason instead of a value."""
    try:
        value = run()
    except Skip as exc:
        return {"skipped": str(exc)}
    except TimedOut as exc:
        return {"timeout": str(exc), "done": exc.done, "total": exc.total}
    except Exception as exc:
        if os.environ.get("BENCH_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return {"error": f"{type(exc).__name__}: {first}"[:300]}
    return value if isinstance(value, dict) else {"seconds": value}
