"""The runner's event log: one line per job event on stderr, for people or (--log-json) shippers."""

from __future__ import annotations

import json
import sys
import time
from typing import IO, Any

from queuectl.durations import ms_to_iso


class EventLog:
    """Writes `2026-11-27T22:33:28.123Z finished 3f2a… exit 0 in 12ms` or the same as JSON."""

    def __init__(self, as_json: bool = False, quiet: bool = False, stream: IO[str] | None = None):
        self.as_json = as_json
        self.quiet = quiet
        self.stream = stream or sys.stderr

    def __call__(self, event: str, message: str, important: bool = False, **fields: Any) -> None:
        if self.quiet and not important:
            return
        now = ms_to_iso(time.time_ns() // 1_000_000)
        if self.as_json:
            line = json.dumps({"time": now, "event": event, **fields, "message": message})
        else:
            line = f"{now} {message}"
        try:
            self.stream.write(line + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass  # a closed or full log must not stop the runner
