"""Store URLs in messages: passwords redacted from any text, and PostgreSQL URLs checked before use.

A URL reaches error messages through the driver's own errors (psycopg quotes the whole URL when
it cannot parse it), so redaction works on any text, not on a URL known to be well formed.
"""

from __future__ import annotations

import re

from queuectl.errors import InvalidInputError

MASK = "***"
# scheme://user:PASSWORD@host: everything from the colon after the user to the last `@` before
# a space, since a malformed URL may hold a raw `@` or a quote in its password.
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s'\"]*:)\S*@")
# password=VALUE, as a URL query parameter or in a key=value connection string (maybe quoted)
_KEYWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&'\"]*)", re.I)


def redact_url(text: str) -> str:
    """`text` with every password of a URL or connection string in it replaced by ***."""
    text = _USERINFO.sub(lambda m: f"{m['head']}{MASK}@", text)
    return _KEYWORD.sub(lambda m: f"{m['head']}{MASK}", text)


def check_postgres_url(url: str) -> None:
    """Raise InvalidInputError (exit 2) for a PostgreSQL URL that libpq could not parse.

    The message never holds the password. Without psycopg installed nothing is checked: opening
    the store then says which extra to install.
    """
    try:
        from psycopg import ProgrammingError
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return
    try:
        params = conninfo_to_dict(url)
    except ProgrammingError as exc:
        why = " ".join(str(exc).split())
        raise InvalidInputError(f"--db: {redact_url(url)!r}: {redact_url(why)}") from None
    if "@" in str(params.get("host") or ""):
        # libpq ends the password at the first `@`: the rest of it would be taken for a host
        # name, and printed as one.
        raise InvalidInputError(
            f"--db: {redact_url(url)!r}: an `@` in the password must be written %40"
        )
    for port in str(params.get("port") or "").split(","):
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
            raise InvalidInputError(
                f"--db: {redact_url(url)!r}: port {port!r} is not a number from 1 to 65535"
            )
