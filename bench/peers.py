"""The peers: `xargs -P W` (the spawn limit), huey (SqliteHuey) and RQ (on the local Redis).

Each peer runs the same `true` through `/bin/sh -c`, from a task that calls subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import random
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from bench.common import BIN, ROOT, TimedOut, processes, summary_ms, wait_count, wait_until
from bench.stores import Scratch

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# huey's consumer polls SQLite with a backoff (defaults: 0.1 s growing to 10 s when idle, which
# would make its latency a measure of that setting); the bench gives it a 10 ms to 100 ms poll.
HUEY_POLL = ["--delay", "0.01", "--max-delay", "0.1"]


def xargs_drain(n: int, workers: int, timeout_s: float) -> float:
    """The limit: N `sh -c true` with W at a time, no queue at all."""
    started = time.perf_counter()
    subprocess.run(
        f"seq {n} | xargs -P {workers} -I{{}} sh -c true", shell=True, check=True, timeout=timeout_s
    )
    return time.perf_counter() - started


# -- huey


def huey_available() -> str | None:
    return (
        None
        if importlib.util.find_spec("huey")
        else "huey is not installed (pip install 'queuectl[bench]')"
    )


@contextmanager
def huey_consumer(workers: int, scratch: Scratch) -> Iterator[tuple[Any, Any]]:
    """A huey consumer with W worker threads on a fresh SqliteHuey file, proven up by one task."""
    from huey import SqliteHuey

    from bench.peer_tasks import run_command

    db = scratch.file("huey", ".db")
    huey = SqliteHuey("bench", filename=str(db))  # the consumer's twin, for enqueueing here
    run = huey.task()(run_command)
    command = [
        str(BIN / "huey_consumer"),
        "bench.huey_app.huey",
        "-w",
        str(workers),
        "-k",
        "thread",
        "-n",
        "-q",
        *HUEY_POLL,
    ]
    with processes(
        [command], scratch.file("huey", ".log"), {"BENCH_HUEY_DB": str(db), "PYTHONPATH": str(ROOT)}
    ):
        if run("true").get(blocking=True, timeout=30) is None:
            raise RuntimeError("the huey consumer did not start")
        yield huey, run


def huey_drain(n: int, workers: int, scratch: Scratch, timeout_s: float) -> float:
    with huey_consumer(workers, scratch) as (huey, run):
        started = time.perf_counter()
        for _ in range(n):
            run("true")
        try:
            wait_count(huey.result_count, n, timeout_s - (time.perf_counter() - started), 0.01)
        except TimedOut as exc:
            exc.seconds = time.perf_counter() - started
            raise
        return time.perf_counter() - started


def huey_latency(samples: int, pause_s: float, scratch: Scratch) -> dict[str, Any]:
    with huey_consumer(2, scratch) as (_huey, run):
        pairs = []
        for _ in range(samples):
            sent = time.time()
            pairs.append((sent, run("true")))
            time.sleep(pause_s * (0.75 + random.random() / 2))
        values = [(result.get(blocking=True, timeout=30) - sent) * 1000 for sent, result in pairs]
    return summary_ms(values)


# -- RQ


def rq_available() -> str | None:
    if not (importlib.util.find_spec("rq") and importlib.util.find_spec("redis")):
        return "rq or redis is not installed (pip install 'queuectl[bench]')"
    import redis

    try:
        conn = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        size = conn.dbsize()
    except Exception as exc:
        return f"Redis unreachable at {REDIS_URL}: {exc}"
    if size:
        return f"{REDIS_URL} holds {size} keys; the bench needs an empty Redis database (BENCH_REDIS_URL)"
    return None


@contextmanager
def rq_workers(workers: int, scratch: Scratch) -> Iterator[Any]:
    """W `rq worker` processes (RQ's default forking Worker) on a fresh queue; emptied after."""
    import redis
    from rq import Queue, Worker

    conn = redis.Redis.from_url(REDIS_URL)
    name = f"bench-{os.getpid()}-{random.randrange(1 << 30)}"
    queue = Queue(name, connection=conn)
    command = [str(BIN / "rq"), "worker", "-u", REDIS_URL, "--path", str(ROOT), "-q", name]
    try:
        with processes([command] * workers, scratch.file("rq", ".log")):
            if not wait_until(lambda: len(Worker.all(queue=queue)) >= workers, 30, 0.05):
                raise RuntimeError("the RQ workers did not start")
            yield queue
    finally:
        conn.flushdb()  # the database was empty when the bench began (rq_available)


def rq_drain(n: int, workers: int, scratch: Scratch, timeout_s: float) -> float:
    from rq import Queue

    from bench.peer_tasks import run_command

    with rq_workers(workers, scratch) as queue:
        batch = [Queue.prepare_data(run_command, ("true",), result_ttl=3600) for _ in range(n)]
        started = time.perf_counter()
        queue.enqueue_many(batch)
        try:
            wait_count(lambda: queue.finished_job_registry.count, n, timeout_s, 0.01)
        except TimedOut as exc:
            exc.seconds = time.perf_counter() - started
            raise
        return time.perf_counter() - started


def rq_latency(samples: int, pause_s: float, scratch: Scratch) -> dict[str, Any]:
    from bench.peer_tasks import run_command

    with rq_workers(2, scratch) as queue:
        pairs = []
        for _ in range(samples):
            sent = time.time()
            pairs.append((sent, queue.enqueue(run_command, "true", result_ttl=3600)))
            time.sleep(pause_s * (0.75 + random.random() / 2))
        wait_until(lambda: queue.finished_job_registry.count >= samples, 30, 0.02)
        values = []
        for sent, job in pairs:
            value = job.return_value()
            if value is None:
                raise RuntimeError(f"RQ job {job.id} has no result")
            values.append((value - sent) * 1000)
    return summary_ms(values)
