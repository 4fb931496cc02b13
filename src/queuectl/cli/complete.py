"""Shell completion of values: states, config keys, and queue names, job ids and schedules
read from the store (only when it exists: completing must not create one)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import click

#: Completion reads at most this many of the newest jobs, so it stays fast on a big store.
MAX_IDS = 500

Completer = Callable[[click.Context, click.Parameter, str], list[str]]


def _queue(ctx: click.Context) -> Any:
    """The Queue of the store the command line names, or None when there is none yet."""
    from queuectl.cli import sqlite_path

    target = ctx.find_root().params.get("target") or os.environ.get("QUEUECTL_DB") or None
    path = sqlite_path(target)
    if path is not None and not os.path.exists(path):
        return None
    from queuectl.queue import Queue

    return Queue(target)


def _from_store(read: Callable[[Any], list[str]]) -> Completer:
    def complete(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
        try:
            queue = _queue(ctx)
            if queue is None:
                return []
            try:
                names = read(queue)
            finally:
                queue.close()
        except Exception:  # a completion never prints a traceback into the user's shell
            return []
        return [name for name in names if name.startswith(incomplete)]

    return complete


def states(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from queuectl.models import STATES

    return [state for state in STATES if state.startswith(incomplete)]


def finished_states(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from queuectl.models import FINISHED_STATES

    return sorted(state for state in FINISHED_STATES if state.startswith(incomplete))


def config_keys(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from queuectl.config import KEYS

    return [key for key in KEYS if key.startswith(incomplete)]


queues = _from_store(lambda queue: list(queue.queues()))
job_ids = _from_store(lambda queue: [job.id for job in queue.list(limit=MAX_IDS)])
dead_ids = _from_store(lambda queue: [job.id for job in queue.list(state="dead", limit=MAX_IDS)])
schedules = _from_store(lambda queue: [schedule.name for schedule in queue.schedules()])
hooks = _from_store(lambda queue: [hook.name for hook in queue.hooks()])
