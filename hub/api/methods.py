"""Which methods a path has, told the same way everywhere: ``OPTIONS`` answers them, a method the path
lacks is a 405 naming them in ``Allow``.

A path belongs to its most specific route template, as in the OpenAPI document: ``/people/export`` is
not ``/people/{person_id}`` (whose PATCH would otherwise answer ``person_not_found`` for "export"), and
``/mappings/{name}/copy`` is not ``/mappings/{name}``. Starlette alone would route by the first full
match and, on a 405, list only the first matching route's methods.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from hub.errors import HubError

ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_PARAM = re.compile(r"\{[^}]*\}")


def _specificity(route: Any) -> tuple[int, int]:
    template = str(getattr(route, "path_format", getattr(route, "path", "")))
    literal = len(_PARAM.sub("", template))
    return literal, -len(_PARAM.findall(template))


def _flat(routes: Any) -> Iterator[Any]:
    for route in routes:
        nested = getattr(route, "effective_route_contexts", None)  # FastAPI ≥ 0.16x keeps routers nested
        if callable(nested):
            yield from nested()
        else:
            yield route


def allowed_methods(routes: Any, scope: Scope) -> list[str] | None:
    """The methods of the most specific templates matching the scope's path, OPTIONS last; ``[]`` for a
    path no route has; None where a mount (static files) takes any method."""
    probe = {**scope, "method": "GET"}
    matching = [r for r in _flat(routes) if r.matches(probe)[0] != Match.NONE]
    if not matching:
        return []
    best = max(_specificity(r) for r in matching)
    chosen = [r for r in matching if _specificity(r) == best]
    if any(getattr(r, "methods", None) is None for r in chosen):
        return None
    methods = set().union(*(r.methods for r in chosen))
    return [m for m in ORDER if m in methods] + ["OPTIONS"]


class MethodGuard:
    """ASGI middleware: ``OPTIONS`` answers 204 with ``Allow`` (no credentials needed: it tells what the
    OpenAPI document tells); a method the path lacks answers 405 with ``Allow``, before authentication."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            allowed = allowed_methods(scope["app"].router.routes, scope)
            if allowed and scope["method"] == "OPTIONS":
                await _answer(send, 204, allowed, b"")
                return
            if allowed and scope["method"] not in allowed:
                body = HubError(405, "method_not_allowed", f"{scope['method']} is not a method of this path").body()
                await _answer(send, 405, allowed, json.dumps(body).encode())
                return
        await self.app(scope, receive, send)


async def _answer(send: Send, status: int, allowed: list[str], body: bytes) -> None:
    headers = [(b"allow", ", ".join(allowed).encode()), (b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
