"""The API's bearer token when none is given: made once, kept 0600 beside the store, reused.

SQLite: `<database file>.api-token`. PostgreSQL: `$XDG_DATA_HOME/queuectl/api-token-<digest>`,
one per server and database. Whoever can read the file can call the API, as whoever can read
the database file could already run commands through it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat

from queuectl.errors import StoreError
from queuectl.queue import Queue

TOKEN_BYTES = 32


def token_path(queue: Queue) -> str:
    """Where the token of this queue's store is kept."""
    described = queue.describe()
    url = str(described["target"])
    if described["kind"] == "sqlite":
        return f"{url}.api-token"
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    where = "|".join(str(params.get(key) or "") for key in ("host", "port", "dbname"))
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]
    data_home = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(data_home, "queuectl", f"api-token-{digest}")


def stored_token(queue: Queue) -> str:
    """The token kept for the queue's store, made now (0600, atomically) if there is none."""
    path = token_path(queue)
    try:
        return _kept_or_new(path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot keep the API token: {exc.strerror or exc}") from None


def _kept_or_new(path: str) -> str:
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    scratch = f"{path}.{os.getpid()}.tmp"
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, (secrets.token_urlsafe(TOKEN_BYTES) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link, unlike rename, fails when the name exists: two servers starting at once agree.
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        os.unlink(scratch)
    return _read(path)


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise StoreError(f"{path}: the API token file must be a file of this user")
        if info.st_mode & 0o077:
            os.fchmod(fd, 0o600)  # made readable by others since: take it back
        token = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    if len(token) < 16:
        raise StoreError(f"{path}: the API token file holds no usable token; delete it")
    return token
