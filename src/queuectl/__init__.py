"""queuectl: a durable background job queue for shell commands.

The public API: `Queue`, `Job` and the errors. `Queue` and `Job` load on first use, so that
a submodule (the CLI's error handler, `queuectl --help`) does not pay for the store's imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from queuectl.errors import (
    ConflictError,
    DuplicateJobError,
    InvalidInputError,
    NotFoundError,
    QueuectlError,
    StoreError,
    WrongStateError,
)

if TYPE_CHECKING:
    from queuectl.models import Job
    from queuectl.queue import Queue

__all__ = [
    "ConflictError",
    "DuplicateJobError",
    "InvalidInputError",
    "Job",
    "NotFoundError",
    "Queue",
    "QueuectlError",
    "StoreError",
    "WrongStateError",
]
# The one place the version is written: pyproject.toml reads it, and CHANGELOG.md names the
# commit of each release.
__version__ = "0.2.0"


def __getattr__(name: str) -> Any:
    if name == "Queue":
        from queuectl.queue import Queue

        return Queue
    if name == "Job":
        from queuectl.models import Job

        return Job
    raise AttributeError(f"module 'queuectl' has no attribute {name!r}")
