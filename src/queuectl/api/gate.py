"""The ASGI layer in front of the app: the bearer token and the body size, checked before any
byte of a request's body is read, so an unauthenticated or oversized upload costs no memory;
and the audit of every mutating request it let through."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, NamedTuple

import anyio.to_thread

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1 << 20
OPEN_PATHS = frozenset({"/api/health"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The name the token given to `serve` (or kept beside the store) goes by: an admin token. No
#: token made by `token add` can have it (names are ids, without parentheses).
SERVE_TOKEN = "(serve)"
#: Where a request's scope holds who made it (an Identity) and what the audit records of it.
IDENTITY = "queuectl.identity"
AUDIT = "queuectl.audit"
#: How long a token looked up in the store is believed (a revoked token stops within this).
TOKEN_CACHE_S = 2.0


class Identity(NamedTuple):
    """Who a request comes from: the token's name, and its role."""

    name: str
    role: str


def needs_token(path: str) -> bool:
    """Every /api route but /api/health, and /metrics; the dashboard's own files are public."""
    if path in OPEN_PATHS:
        return False
    return path == "/metrics" or path == "/api" or path.startswith(("/api/", "/metrics/"))


class Gate:
    """401 without a token on guarded paths (the `serve` token, or one of the store's that
    `lookup` finds by its SHA-256), 413 for a body over `max_body` bytes; each mutating request
    let through is given to `record` once answered."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        max_body: int = DEFAULT_MAX_BODY,
        lookup: Callable[[str], tuple[str, str] | None] | None = None,
        record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.app = app
        self.token = token.encode()
        self.max_body = max_body
        self.lookup = lookup
        self.record = record
        self.known: dict[str, tuple[float, Identity | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        identity = None
        if needs_token(scope.get("path", "")):
            identity = await self._identity(headers)
            if identity is None:
                challenge = [(b"www-authenticate", b"Bearer")]
                await _answer(send, 401, "a valid bearer token is required", challenge)
                return
            scope[IDENTITY] = identity
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_body:
                await _answer(send, 413, self._too_large())
                return
        if identity is None or scope.get("method") in SAFE_METHODS or self.record is None:
            await self._guarded(scope, receive, send)
            return
        await self._audited(scope, receive, send, identity)

    async def _identity(self, headers: dict[bytes, bytes]) -> Identity | None:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        given = given.strip()
        if scheme.lower() != b"bearer" or not given:
            return None
        if hmac.compare_digest(given, self.token):
            return Identity(SERVE_TOKEN, "admin")
        if self.lookup is None:
            return None
        secret = given.decode("ascii", "replace")
        digest = hashlib.sha256(given).hexdigest()
        now = time.monotonic()
        cached = self.known.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        found = await anyio.to_thread.run_sync(self.lookup, secret)
        identity = None if found is None else Identity(*found)
        if len(self.known) > 1000:  # many wrong tokens: forget them rather than grow
            self.known.clear()
        self.known[digest] = (now + TOKEN_CACHE_S, identity)
        return identity

    async def _audited(self, scope: Scope, receive: Receive, send: Send, who: Identity) -> None:
        """Answer the request, then record it: what the route said it touched (or its path's
        parameters), and the status it was answered with."""
        noted: dict[str, Any] = {}
        scope[AUDIT] = noted
        status = 500

        async def noting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        record = self.record
        try:
            await self._guarded(scope, receive, noting_send)
        finally:
            client = scope.get("client")
            entry = {
                "token": who.name,
                "client": str(client[0]) if client else "",
                "method": str(scope.get("method", "")),
                "route": str(noted.get("route", scope.get("path", ""))),
                "target": str(noted.get("target", "")),
                "status": status,
            }
            if record is not None:
                await anyio.to_thread.run_sync(record, entry)

    def _too_large(self) -> str:
        return f"the request body is larger than {self.max_body} bytes"

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the body as it streams in (chunked uploads have no length to check first)."""
        received = 0
        refused = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    refused = True
                    if not started:
                        await _answer(send, 413, self._too_large())
                    # To the app the client has gone: it stops reading and answers nobody.
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not refused:
                raise


async def _answer(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
