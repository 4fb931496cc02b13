"""Both SQL dialects define the same named queries, so each store step exists in each."""

from __future__ import annotations

from queuectl.store.queries import load_queries

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
