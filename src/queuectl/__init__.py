"""queuectl: a durable background job queue for shell commands.

The public API: `Queue`, `Job` and the errors. Importing it loads nothing heavy.
"""

from __future__ import annotations

from queuectl.errors import (
    ConflictError,
    DuplicateJobError,
    InvalidInputError,
    NotFoundError,
    QueuectlError,
    StoreError,
    WrongStateError,
)
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
__version__ = "0.1.0"
