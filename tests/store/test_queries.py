"""Both SQL dialects define the same named queries, so each store step exists in each."""

from __future__ import annotations

from psycopg import _queries as psycopg_queries

from queuectl.store.postgres import PostgresDialect
from queuectl.store.queries import load_queries, strip_comments
from tests.support.clock import FakeClock

#: Names only one dialect needs start with its prefix: PostgreSQL's advisory migration lock,
#: server clock and LISTEN/NOTIFY have no SQLite statement (SQLite uses PRAGMA user_version
#: and Unix sockets, outside SQL files).
DIALECT_ONLY = {"sqlite": "sqlite_", "postgres": "pg_"}


def shared(dialect: str) -> set[str]:
    prefix = DIALECT_ONLY[dialect]
    return {name for name in load_queries(dialect) if not name.startswith(prefix)}


def test_both_dialects_define_the_same_names() -> None:
    sqlite, postgres = shared("sqlite"), shared("postgres")
    assert sorted(sqlite - postgres) == [], "defined in sql/sqlite/ only"
    assert sorted(postgres - sqlite) == [], "defined in sql/postgres/ only"


def test_no_dialect_uses_the_other_ones_prefix() -> None:
    for dialect in DIALECT_ONLY:
        others = [p for d, p in DIALECT_ONLY.items() if d != dialect]
        names = load_queries(dialect)
        assert not [n for n in names if n.startswith(tuple(others))], dialect
        assert all(names[n].strip() for n in names), f"{dialect}.sql has an empty block"


def test_every_statement_is_short_enough_for_the_drivers_parse_cache() -> None:
    # psycopg parses a statement longer than this again at every execution (the runner's
    # exchange sends its claim each time): the comments are stripped to stay under it.
    limit = getattr(psycopg_queries, "MAX_CACHED_STATEMENT_LENGTH", 4096)
    with_includes = PostgresDialect("postgresql://nowhere.invalid/none", FakeClock()).q
    too_long = {name: len(sql) for name, sql in with_includes.items() if len(sql) > limit}
    assert too_long == {}


def test_comments_are_stripped_outside_strings_only() -> None:
    sql = "SELECT '--not a comment', 'it''s -- still' -- a comment\n  -- a line\nFROM t"
    assert strip_comments(sql) == "SELECT '--not a comment', 'it''s -- still'\nFROM t"
