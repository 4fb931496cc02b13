"""The huey application the bench's huey consumer loads: SqliteHuey on BENCH_HUEY_DB."""

from __future__ import annotations

import os

from huey import SqliteHuey

from bench.peer_tasks import run_command

huey = SqliteHuey("bench", filename=os.environ.get("BENCH_HUEY_DB", "bench-huey.db"))
run = huey.task()(run_command)
