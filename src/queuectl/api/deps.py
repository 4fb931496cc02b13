"""What the app and its routes both need: the token check, the store's Queue, and the route
class that parses every JSON body with the one parser of user JSON."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from queuectl.models import parse_json
from queuectl.queue import Queue

bearer = HTTPBearer(auto_error=False, description="the token given to `queuectl serve --token`")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 unless the request carries `Authorization: Bearer TOKEN` (when a token is set)."""
    expected: str = request.app.state.token
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})


async def get_queue(request: Request) -> Queue:
    queue: Queue = request.app.state.queue
    return queue


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class JsonRoute(APIRoute):
    """A route whose JSON body goes through the one parser of user JSON: a body nested too
    deeply is invalid JSON (422) like any other, not a parser's crash."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handle(_JsonRequest(request.scope, request.receive))

        return route
