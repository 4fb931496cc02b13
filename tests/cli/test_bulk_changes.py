"""`cancel --all`, `dlq retry --all` and `purge` of more jobs than a batch: how far they got on
a terminal's stderr as each batch commits, nothing of it on a pipe (issue 26)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable

from queuectl.models import new_job
from queuectl.store import BULK_BATCH, Store
from tests.cli.conftest import finish
from tests.cli.terminal import in_terminal

Cli = Callable[..., subprocess.CompletedProcess[str]]
COUNT = 2 * BULK_BATCH + 500


def fill(store: Store) -> None:
    store.enqueue_many([new_job({"id": f"j{n:04}", "command": "true"}) for n in range(COUNT)])


def test_a_bulk_cancel_shows_its_progress_on_a_terminal(target: str, store: Store) -> None:
    fill(store)
    screen = in_terminal(target, "cancel", "--all", "--yes", stderr_too=True)
    assert screen.returncode == 0, screen.raw
    # A line per batch (each at most BULK_BATCH, sized by how long the last ones took), the
    # count rising to all of them.
    shown = [int(n.replace(",", "")) for n in re.findall(r"\rcancelled ([\d,]+) of", screen.raw)]
    assert len(shown) >= COUNT // BULK_BATCH, screen.raw
    assert shown == sorted(shown)
    assert shown[-1] == COUNT
    assert all(0 < b - a <= BULK_BATCH for a, b in zip([0, *shown], shown, strict=False))
    assert screen.text.rstrip().endswith(f"cancelled {COUNT} jobs")
    assert store.counts() == {"default": {"cancelled": COUNT}}


def test_bulk_changes_write_no_progress_on_a_pipe(cli: Cli, store: Store) -> None:
    fill(store)
    cancelled = cli("cancel", "--all", "--yes")
    assert (cancelled.returncode, cancelled.stderr) == (0, f"cancelled {COUNT} jobs\n")
    store.enqueue_many([new_job({"id": "dead", "command": "false", "max_retries": 0})])
    assert finish(store, "dead", 1) == "dead"
    retried = cli("dlq", "retry", "--all")
    assert (retried.stdout, retried.stderr) == ("dead\n", "retried 1 job\n")
    purged = cli("purge", "--state", "cancelled", "--yes")
    assert (purged.returncode, purged.stderr) == (0, f"purged {COUNT} jobs\n")
    assert store.counts() == {"default": {"pending": 1}}
