"""open_target: the store for a target, its dialect picked by the target's form, migrated."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from queuectl.errors import InvalidInputError
from queuectl.store.sqlstore import SQLStore

if TYPE_CHECKING:
    from queuectl.clock import Clock
    from queuectl.store.dialect import Dialect


def open_target(target: str, clock: Clock | None, durable: bool) -> SQLStore:
    """The store for a file path, `sqlite:///abs/path` or `postgresql://...` URL, migrated."""
    db: Dialect
    if target.startswith(("postgresql://", "postgres://")):
        from queuectl.extras import require

        require("a postgresql:// store", "postgres", "psycopg")
        from queuectl.store.postgres import PostgresDialect
        from queuectl.urls import check_postgres_url

        check_postgres_url(target)
        db = PostgresDialect(target, clock)
    else:
        from queuectl.store.sqlite import SQLiteDialect

        if target.startswith("sqlite:///"):
            path = target[len("sqlite://") :]
        elif target.startswith("sqlite:"):
            raise InvalidInputError(f"--db: {target!r}: use sqlite:///absolute/path")
        elif "://" in target:
            raise InvalidInputError(
                f"--db: {target!r}: expected a file path, sqlite:///path or postgresql://..."
            )
        else:
            path = target
        db = SQLiteDialect(os.path.abspath(os.path.expanduser(path)), clock, durable)
    store = SQLStore(db)
    store.migrate()
    return store
