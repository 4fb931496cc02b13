"""The error tree: every expected failure is a QueuectlError that knows its exit code and HTTP status."""

from __future__ import annotations


class QueuectlError(Exception):
    """Base of every error queuectl reports to a user."""

    exit_code = 1
    http_status = 500


class InvalidInputError(QueuectlError):
    """The input (a job, an option, a config value) is not valid."""

    exit_code = 2
    http_status = 422


class NotFoundError(QueuectlError):
    """A job, schedule or config key that does not exist."""

    http_status = 404


class ConflictError(QueuectlError):
    """The operation conflicts with the current state (duplicate id, wrong state)."""

    http_status = 409


class DuplicateJobError(ConflictError):
    """A job with this id already exists."""


class WrongStateError(ConflictError):
    """The job's state forbids the operation."""


class StoreError(QueuectlError):
    """The store cannot be opened or written (corrupt file, full disk, newer schema...)."""

    http_status = 503


class NewerSchemaError(StoreError):
    """The store was upgraded by a newer queuectl: this one must not write to it."""
