"""What every flow reads often and may see a little stale: the configuration and the hooks."""

from __future__ import annotations

import time
from typing import Any

from queuectl.store import rows
from queuectl.store.dialect import Dialect
from queuectl.store.records import Hook, QueueDefaults

CONFIG_TTL_S = 1.0  # how stale the configuration used for settling may be


class Settings:
    """The configuration and the hooks, each read at most every CONFIG_TTL_S: a round trip
    saved per settlement, and runners pick changes up within seconds anyway."""

    def __init__(self, db: Dialect) -> None:
        self.db = db
        self._config: tuple[float, dict[str, float]] | None = None
        self._hooks: tuple[float, list[Hook]] | None = None
        self._defaults: tuple[float, dict[str, QueueDefaults]] | None = None

    def settle_config(self, conn: Any) -> dict[str, float]:
        """The configuration for settling."""
        cached = self._config
        if cached is None or time.monotonic() - cached[0] > CONFIG_TTL_S:
            cached = self._config = (time.monotonic(), self.db.read_config(conn))
        return cached[1]

    def hooks(self, conn: Any) -> list[Hook]:
        """The hooks: with none, settling costs no query."""
        cached = self._hooks
        if cached is None or time.monotonic() - cached[0] > CONFIG_TTL_S:
            hooks = self.read_hooks(conn)
            cached = self._hooks = (time.monotonic(), hooks)
        return cached[1]

    def read_hooks(self, conn: Any) -> list[Hook]:
        return [
            rows.hook(r, self.db.from_json) for r in conn.execute(self.db.q["hooks"]).fetchall()
        ]

    def queue_defaults(self, conn: Any) -> dict[str, QueueDefaults]:
        """The queues' defaults for their jobs' attempts: with none, a claim applies nothing."""
        cached = self._defaults
        if cached is None or time.monotonic() - cached[0] > CONFIG_TTL_S:
            cached = self._defaults = (time.monotonic(), self.read_queue_defaults(conn))
        return cached[1]

    def read_queue_defaults(self, conn: Any) -> dict[str, QueueDefaults]:
        return {
            r["name"]: QueueDefaults(r["default_timeout"], r["default_max_retries"])
            for r in conn.execute(self.db.q["queue_defaults"]).fetchall()
        }

    def forget(self, config: bool = True, hooks: bool = True) -> None:
        """Read again next time (this process changed them)."""
        if config:
            self._config = None
        if hooks:
            self._hooks = None
        self._defaults = None
