"""Optional dependencies: a feature whose extra is not installed says so in one line, exit 2.

`serve` needs the `server` extra and `postgresql://` stores the `postgres` extra; neither is
imported by `enqueue`, so the check runs only where the feature starts.
"""

from __future__ import annotations

import importlib

from queuectl.errors import QueuectlError


class MissingExtraError(QueuectlError):
    """A feature needs a package that is not installed; the message names the install command."""

    exit_code = 2
    http_status = 501


def require(feature: str, extra: str, *modules: str) -> None:
    """Raise MissingExtraError unless every module of `modules` imports.

    `require("queuectl serve", "server", "fastapi", "uvicorn")` fails with
    `queuectl serve needs the server extra: pip install 'queuectl[server]'`.
    """
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(
                f"{feature} needs the {extra} extra: pip install 'queuectl[{extra}]'"
            ) from None
