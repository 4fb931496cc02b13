"""What the app and its routes both need: the token check, the store's Queue, and the route
class that parses every JSON body with the one parser of user JSON."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from queuectl.api.gate import AUDIT, IDENTITY, SAFE_METHODS, Identity
from queuectl.models import parse_json
from queuectl.queue import Queue

bearer = HTTPBearer(auto_error=False, description="the token given to `queuectl serve --token`")


#: Each role may do what the roles before it may.
ROLES = ("read", "operate", "admin")
#: The writes an `operate` token may make (by method and route); every other write needs
#: `admin`, every read (GET) `read`. A bulk delete needs `admin` too (see bulk).
OPERATE_ROUTES = frozenset(
    {
        ("POST", "/api/jobs/{job_id}/cancel"),
        ("POST", "/api/jobs/{job_id}/retry"),
        ("POST", "/api/jobs/bulk"),
        ("POST", "/api/dlq/retry"),
        ("POST", "/api/queues/{name}/pause"),
        ("POST", "/api/queues/{name}/resume"),
        ("POST", "/api/jobs/{job_id}/hold"),
        ("POST", "/api/jobs/{job_id}/release"),
        ("POST", "/api/batches/{name}/cancel"),
    }
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """401 without a token the Gate knew; 403 when its role may not use this route."""
    identity: Identity | None = request.scope.get(IDENTITY)
    if identity is None:
        raise HTTPException(401, "a valid bearer token is required", {"WWW-Authenticate": "Bearer"})
    route = getattr(request.scope.get("route"), "path", request.url.path)
    noted = request.scope.get(AUDIT)
    if noted is not None:
        noted["route"] = route
        noted["target"] = " ".join(str(v) for v in request.path_params.values())
    if request.method in SAFE_METHODS:
        return
    require_role(request, "operate" if (request.method, route) in OPERATE_ROUTES else "admin")


def require_role(request: Request, needed: str) -> None:
    """403 unless the request's token has `needed` or a role above it."""
    identity: Identity | None = request.scope.get(IDENTITY)
    if identity is None or ROLES.index(identity.role) < ROLES.index(needed):
        who = "no token" if identity is None else f"token {identity.name!r} ({identity.role})"
        raise HTTPException(403, f"{who} may not do this: it needs the {needed} role")


def touched(request: Request, what: str) -> None:
    """Say what a mutating request touched, for its audit entry (its path's parameters by
    default)."""
    noted = request.scope.get(AUDIT)
    if noted is not None:
        noted["target"] = what


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
