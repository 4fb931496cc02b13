"""The ASGI layer in front of the app: the bearer token and the body size, checked before any
byte of a request's body is read, so an unauthenticated or oversized upload costs no memory."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1 << 20
OPEN_PATHS = frozenset({"/api/health"})


def needs_token(path: str) -> bool:
    """Every /api route but /api/health, and /metrics; the dashboard's own files are public."""
    if path in OPEN_PATHS:
        return False
    return path == "/metrics" or path == "/api" or path.startswith(("/api/", "/metrics/"))


class Gate:
    """401 without the token on guarded paths, 413 for a body over `max_body` bytes."""

    def __init__(self, app: ASGIApp, token: str, max_body: int = DEFAULT_MAX_BODY) -> None:
        self.app = app
        self.token = token.encode()
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if needs_token(scope.get("path", "")) and not self._authorized(headers):
            challenge = [(b"www-authenticate", b"Bearer")]
            await _answer(send, 401, "a valid bearer token is required", challenge)
            return
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await _answer(send, 400, "Content-Length is not a number")
                return
            if int(length) > self.max_body:
                await _answer(send, 413, self._too_large())
                return
        await self._guarded(scope, receive, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)

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
