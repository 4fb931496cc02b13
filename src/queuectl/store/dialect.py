"""The dialect: what one database supplies to the store's flows, and `operation`, their seam.

A dialect (sqlite.py, postgres.py) owns the connection and the write transaction, how driver
errors are retried or translated (`attempt`), how list and JSON parameters are encoded, which
driver error is a unique violation, bulk inserts, wakeups, migrations, and the named SQL. The
flows (enqueue.py, exchange.py, ...) are written once over it; rows are read by column name
(sqlite3.Row, psycopg's dict_row).
"""

from __future__ import annotations

import abc
import functools
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeVar,
)

from queuectl.config import DEFAULTS
from queuectl.errors import StoreError
from queuectl.store import rows
from queuectl.store.queries import claim_changes, load_queries

if TYPE_CHECKING:
    from queuectl.clock import Clock
    from queuectl.store import Listener

P = ParamSpec("P")
T = TypeVar("T")
#: How long an operation a runner calls waits for the store (a lock another process holds, a
#: server that went away) before it fails. Short: the runner's one loop must go on timing out,
#: killing and collecting its jobs, so it gets the StoreError soon and tries again on its next
#: turn (it outlives a restart that way).
RUNNER_PATIENCE_S = 1.0
_INCLUDE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
#: Reading the counts folds their deltas into the base once more than this many piled up.
COMPACT_AFTER_DELTAS = 1000


class AtOnce(NamedTuple):
    """What a pipelined settle-and-claim sent back: the settlements applied (job ids), the
    rows claimed, when the next delayed job falls due, whether flow control may have held a
    job back from the plain claim, and the limits found (None: the plain claim ran): the
    queues' and the batches' (flow_lock_queues and flow_lock_batches rows)."""

    settled: set[str]
    rows: list[Any]
    next_due: int | None
    held_back: bool
    limits: list[Any] | None
    batches: list[Any] | None = None


class SettleAtOnce(Protocol):
    """The one-round-trip exchange a dialect may offer: apply settlements decided ahead (each
    only if its attempt is still ours, `settle` rows of `pg_settle_fenced`), and claim as
    `claim` does (or as flow_claim_counted over `counted`, see flowcontrol.counted_names), in
    one transaction."""

    def __call__(
        self, settle: Sequence[dict[str, Any]], params: dict[str, Any], counted: list[str] | None
    ) -> AtOnce: ...


class Dialect(abc.ABC):
    """One database under the flows: a connection, transactions, encodings, named SQL."""

    kind: ClassVar[str]
    #: The driver's error for a unique violation.
    unique_violation: ClassVar[type[Exception]]
    #: The driver's parameter placeholder.
    placeholder: ClassVar[str]
    #: The exchange in one round trip, where the dialect has one; else the plain transaction.
    at_once: SettleAtOnce | None = None
    clock: Clock
    q: dict[str, str]

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        queries = {**load_queries(self.kind), **rows.insert_blocks(self.placeholder)}

        # A block names another as `{name}` to include it (which may include others in turn): a
        # statement written once serves on its own and inside larger ones.
        def expand(sql: str) -> str:
            return _INCLUDE.sub(lambda m: expand(queries[m[1]]) if m[1] in queries else m[0], sql)

        self.q = {name: expand(sql) for name, sql in queries.items()}
        self.compact_after = COMPACT_AFTER_DELTAS  # tests lower it to compact at every read

    # -- what each database supplies

    @abc.abstractmethod
    def attempt(self, call: Callable[[], T], runner: bool, replayable: bool) -> T:
        """Run one operation: retry what the dialect may retry, translate driver errors."""

    @abc.abstractmethod
    def connection(self) -> Any:
        """This thread's connection, for reads outside a transaction."""

    @abc.abstractmethod
    def transaction(self) -> AbstractContextManager[Any]:
        """One write transaction; yields the connection."""

    @abc.abstractmethod
    def many(self, conn: Any, name: str, params: Sequence[Sequence[Any] | dict[str, Any]]) -> None:
        """Run one named statement for every row of parameters, in few round trips."""

    @abc.abstractmethod
    def insert_jobs(self, conn: Any, jobs: Sequence[rows.JobRow]) -> None:
        """Insert a batch of `insert_jobs` rows, in as few statements as the driver allows."""

    @abc.abstractmethod
    def count_inserted(self, conn: Any, counts: dict[tuple[str, str], int]) -> None:
        """Add jobs just inserted to the counters: how many per (queue, state)."""

    @abc.abstractmethod
    def count_inserted_ids(self, conn: Any, ids: Sequence[str]) -> None:
        """Add to the counters those of these new ids that were inserted (some may not be)."""

    @abc.abstractmethod
    def array(self, values: Sequence[Any]) -> Any:
        """A list as a query parameter."""

    @abc.abstractmethod
    def json(self, value: Any) -> Any:
        """A JSON value as a query parameter."""

    @abc.abstractmethod
    def from_json(self, value: Any) -> Any:
        """A JSON column as Python data."""

    @abc.abstractmethod
    def wake(self, conn: Any) -> None:
        """Wake the runners once the current transaction commits (work may be available)."""

    @abc.abstractmethod
    def migrate(self) -> int:
        """Create or upgrade the schema; its version. Refuses a newer schema."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Kind, target (without secrets) and schema version."""

    @abc.abstractmethod
    def verify(self) -> None:
        """Check the store's structure; StoreError names the first problem."""

    @abc.abstractmethod
    def listener(self, name: str) -> Listener | None:
        """Wakeups for one runner: readable when work may have become available."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def refuse_newer_schema(self, conn: Any) -> None:
        """Raise NewerSchemaError if a newer queuectl has migrated the store (where the
        dialect's writes do not check it already)."""

    @abc.abstractmethod
    def compact_counts(self, deltas: int | None = None) -> None:
        """Fold the counters' deltas (`deltas` of them, None: not counted yet) into their base
        if more than `compact_after` piled up."""

    def flow_may_apply(self, conn: Any, params: dict[str, Any]) -> bool:
        """Whether flow control may hold back a job that `claim`, in this transaction, just
        took nothing of (else the flow claim's statements are spared: an idle runner's poll
        finds nothing twice). SQLite's one writer sees what the claim saw."""
        return bool(self.value(conn, "flow_held_back", params))

    # -- written once over the above

    def now(self) -> int:
        """The store's clock, epoch milliseconds."""
        return self.clock.now_ms()

    def value(self, conn: Any, name: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """The `value` column of a one-row query (None without a row)."""
        row = conn.execute(self.q[name], params).fetchone()
        return None if row is None else row["value"]

    def json_value(self, value: Any) -> Any:
        """A JSON value a query built (json_agg, json_group_array...) as Python data; None
        stays None (an aggregate of no rows, on PostgreSQL)."""
        return None if value is None else self.from_json(value)

    def read_config(self, conn: Any) -> dict[str, float]:
        """The configuration, defaults filled in."""
        config = dict(DEFAULTS)
        for row in conn.execute(self.q["config_all"]):
            if row["key"] in config:
                config[row["key"]] = self.from_json(row["value"])
        return config

    def refuse_older_runners(self, conn: Any, version: int) -> None:
        """Refuse to migrate from `version` past a migration that changes claims while a runner
        is registered and alive: it knows no schema newer than `version` (a runner of a newer
        queuectl would have migrated the store already), so it would claim and settle by the
        old rules, ignoring limits and locks it does not know. Runs inside the migration's
        transaction, before any change."""
        changes = claim_changes(self.kind, version)
        if not changes or version == 0:
            return
        from queuectl.runner.liveness import is_dead

        listed = conn.execute(self.q["runners_before_migration"]).fetchall()
        runners = [rows.runner(r, None, []) for r in listed]
        if not runners:
            return
        now, lease_s = self.now(), float(self.read_config(conn)["lease_seconds"])
        live = [r for r in runners if not is_dead(r, now, lease_s)]
        if live:
            first = live[0]
            raise StoreError(
                f"cannot upgrade the store to schema {changes[-1]}, which changes how jobs are "
                f"claimed, while runner {first.id} (host {first.host}, pid {first.pid}) of an "
                f"older queuectl is up{f' (and {len(live) - 1} more)' if len(live) > 1 else ''}:"
                " stop it first with `queuectl worker stop` (of its version), then try again"
            )


class Flow:
    """A flow of the store: its operations over the one dialect."""

    def __init__(self, db: Dialect) -> None:
        self.db = db


F = TypeVar("F", bound=Flow)


def operation(
    *, runner: bool = False, replayable: bool = True
) -> Callable[[Callable[Concatenate[F, P], T]], Callable[Concatenate[F, P], T]]:
    """Mark a flow's method as one operation, run through its dialect's `attempt`.

    `runner`: a runner calls it and would rather wait out an unreachable store than fail.
    `replayable`: running it twice equals running it once, so a connection lost during
    COMMIT may be answered by running it again.
    """

    def decorate(method: Callable[Concatenate[F, P], T]) -> Callable[Concatenate[F, P], T]:
        def wrapper(self: F, /, *args: P.args, **kwargs: P.kwargs) -> T:
            return self.db.attempt(lambda: method(self, *args, **kwargs), runner, replayable)

        functools.update_wrapper(wrapper, method)
        return wrapper

    return decorate
