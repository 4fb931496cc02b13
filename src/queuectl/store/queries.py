"""Named SQL blocks (`-- name: claim`) from store/sql/<dialect>.sql, loaded once per dialect."""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """The named queries of one dialect, name -> SQL text."""
    text = resources.files("queuectl.store").joinpath("sql", f"{dialect}.sql").read_text()
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{dialect}.sql defines {name!r} twice")
        queries[name] = body.strip().rstrip(";")
    return queries


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration of a dialect, in order."""
    folder = Path(str(resources.files("queuectl.store").joinpath("migrations", dialect)))
    found = []
    for path in sorted(folder.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        found.append((int(path.name[:4]), path.stem, path.read_text()))
    return found
