"""Named SQL blocks (`-- name: claim`) from store/sql/<dialect>/*.sql and, for what both
dialects run as written, store/sql/shared/*.sql, loaded once per dialect; and the migrations."""

from __future__ import annotations

import os
import re
from functools import cache

HERE = os.path.dirname(os.path.abspath(__file__))
_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


#: The folder of the statements that both dialects run as written, each kept once.
SHARED = "shared"


@cache
def load_queries(dialect: str) -> dict[str, str]:
    """The named queries of one dialect, from every file of store/sql/<dialect>/ and of
    store/sql/shared/ (one a flow), name -> SQL text."""
    # A plain read: importlib.resources would cost the CLI's start-up its imports.
    queries: dict[str, str] = {}
    for part in (SHARED, dialect):
        folder = os.path.join(HERE, "sql", part)
        for file in sorted(name for name in os.listdir(folder) if name.endswith(".sql")):
            with open(os.path.join(folder, file), encoding="utf-8") as handle:
                parts = _NAME.split(handle.read())
            for name, body in zip(parts[1::2], parts[2::2], strict=True):
                if name in queries:
                    raise ValueError(f"{part}/{file} defines {name!r} again")
                queries[name] = strip_comments(body).strip().rstrip(";")
    return queries


def strip_comments(sql: str) -> str:
    """The SQL without its `--` comments (outside quoted strings) and blank lines: what is sent
    to the server. The comments are for readers; sent, a statement with its included blocks
    grows past what the PostgreSQL driver caches the parsing of (4 KiB), and is parsed again
    at every execution, a statement the runner sends each exchange among them."""
    kept: list[str] = []
    quoted = False
    for line in sql.splitlines():
        end = len(line)
        for i, char in enumerate(line):
            if char == "'":
                quoted = not quoted  # a doubled '' inside a string toggles twice
            elif not quoted and line.startswith("--", i):
                end = i
                break
        text = line[:end].rstrip()
        if text:
            kept.append(text)
    return "\n".join(kept)


def _migration_files(dialect: str) -> list[str]:
    folder = os.path.join(HERE, "migrations", dialect)
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if re.fullmatch(r"\d{4}_\w+\.sql", name)
    ]


@cache
def newest_migration(dialect: str) -> int:
    """The schema version the newest migration of a dialect brings: read from the file names
    alone, since every open compares it with the store's and most find nothing to do."""
    return int(os.path.basename(_migration_files(dialect)[-1])[:4])


#: The first line of a migration that changes how jobs are claimed or settled, or what a runner
#: must do when it settles them: a runner that does not know it would break the new rules, so
#: it is not applied while one lives (see Dialect.refuse_older_runners).
CHANGES_CLAIMS = "-- Changes claims:"


def claim_changes(dialect: str, after: int) -> list[int]:
    """The versions of the migrations newer than `after` that change claims."""
    return [v for v, _, sql in migrations(dialect) if v > after and sql.startswith(CHANGES_CLAIMS)]


def migrations(dialect: str) -> list[tuple[int, str, str]]:
    """(version, name, SQL) of every migration of a dialect, in order."""
    found = []
    for path in _migration_files(dialect):
        name = os.path.basename(path)
        with open(path, encoding="utf-8") as handle:
            found.append((int(name[:4]), name[:-4], handle.read()))
    return found
