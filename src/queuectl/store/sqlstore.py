"""SQLStore: the Store composed of its flows over one dialect; it holds no logic of its own.

Each flow is a module (enqueue, exchange, flowcontrol, actions, reads, maintenance, admin...);
the store wires them to the dialect and lends their methods out under the Store's names.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from queuectl.store.dialect import Dialect
from queuectl.store.records import Ledger

if TYPE_CHECKING:
    from queuectl.clock import Clock

#: Each flow: its module under store/, its class, and the flows it is made with (after the
#: dialect), so that flows which share one (the settle's hooks, the settings) share it.
FLOWS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "settings": ("settings", "Settings", ()),
    "enqueue": ("enqueue", "Enqueue", ()),
    "hooks": ("hooks", "Hooks", ("settings", "enqueue")),
    "settle": ("settle", "Settle", ("settings", "hooks")),
    "flowcontrol": ("flowcontrol", "FlowControl", ()),
    "exchange": ("exchange", "Exchanger", ("settle", "flowcontrol")),
    "actions": ("actions", "Actions", ("enqueue", "settle", "hooks")),
    "reads": ("reads", "Reads", ()),
    "registry": ("maintenance", "Registry", ()),
    "maintenance": ("maintenance", "Maintenance", ("enqueue", "settle", "actions")),
    "admin": ("admin", "Admin", ("settings",)),
    "access": ("access", "Access", ()),
    "batches": ("batches", "Batches", ()),
    "control": ("control", "Control", ("settle", "hooks")),
}

#: The Store's methods each flow lends, under the same names (but RENAMED).
LENDS: dict[str, tuple[str, ...]] = {
    "enqueue": ("enqueue_many", "enqueue_batches"),
    "exchange": ("finish_and_claim", "save_progress", "release", "save_output", "owned_jobs"),
    "registry": ("register_runner", "heartbeat", "unregister_runner", "runners"),
    "maintenance": (
        "housekeeping",
        "reap",
        "expire",
        "forget_finished_minutes",
        "next_schedule_ms",
        "fire_schedules",
        "request_stop",
        "withdraw_stop",
        "schedules",
        "add_schedule",
        "remove_schedule",
    ),
    "reads": (
        "get",
        "ids_with_prefix",
        "list_jobs",
        "search_jobs",
        "output",
        "history",
        "counts",
        "done_since",
        "finished_per_minute",
        "attempts_by_queue",
        "recent_durations",
        "oldest_due",
        "totals",
        "dependencies",
        "finished_since",
        "usage_totals",
        "cpu_since",
        "conditions",
    ),
    "flowcontrol": (
        "queue_settings",
        "window_starts",
        "lock_holder",
        "set_limits",
        "set_job_defaults",
    ),
    "batches": ("batches", "batch_waits", "set_batch_limit"),
    "actions": ("cancel", "cancel_all", "requeue", "purge", "bulk"),
    "admin": (
        "config",
        "queues",
        "hooks",
        "set_config",
        "set_paused",
        "add_hook",
        "remove_hook",
        "reset",
    ),
    "access": (
        "add_token",
        "tokens",
        "revoke_token",
        "token_role",
        "record_audit",
        "audit",
        "expire_audit",
    ),
    "control": (
        "expire_unstarted",
        "queue_defaults",
        "hold",
        "release_held",
        "hold_queue",
        "release_queue",
        "hold_batch",
        "release_batch",
        "edit",
        "set_queue_defaults",
    ),
}
#: The Store's names that are not the flow's.
RENAMED = {"release_held": "release"}
LENDER = {method: flow for flow, methods in LENDS.items() for method in methods}
#: The Store's methods that the dialect itself answers.
DIALECT_LENDS = frozenset({"now", "migrate", "describe", "verify", "listener", "close"})


class SQLStore:
    """The Store over one dialect (see store/__init__.py for what each method promises).

    A flow is made, and its module loaded, when one of its methods is first asked for: an
    enqueue loads the enqueue flow and the runners' registry, not the exchange, the bulk
    actions or the admin's. The method is then kept on the store, so later calls go straight
    to the flow.
    """

    def __init__(self, db: Dialect) -> None:
        self.db = db
        self._flows: dict[str, Any] = {}
        self._making = threading.RLock()  # threads share a store: each flow is made once

    def __getattr__(self, name: str) -> Any:
        flow = LENDER.get(name)
        if name in DIALECT_LENDS:
            method = getattr(self.db, name)
        elif flow is None:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        else:
            method = getattr(self.flow(flow), RENAMED.get(name, name))
        setattr(self, name, method)
        return method

    def flow(self, name: str) -> Any:
        """The flow `name` (a key of FLOWS), made with the flows it uses at its first use."""
        with self._making:
            if name not in self._flows:
                module, cls, uses = FLOWS[name]
                flow_class = getattr(importlib.import_module(f"queuectl.store.{module}"), cls)
                self._flows[name] = flow_class(self.db, *(self.flow(used) for used in uses))
            return self._flows[name]

    @property
    def kind(self) -> str:
        return self.db.kind

    @property
    def clock(self) -> Clock:
        return self.db.clock

    @property
    def compact_after(self) -> int:
        """How many counter deltas pile up before a read folds them (tests lower it)."""
        return self.db.compact_after

    @compact_after.setter
    def compact_after(self, value: int) -> None:
        self.db.compact_after = value

    def ledger(self) -> Ledger:
        """A new ledger for one runner's claims, to pass to finish_and_claim and release."""
        return Ledger()

    def preload(self) -> None:
        for name in FLOWS:
            self.flow(name)
