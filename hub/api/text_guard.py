"""Text the database cannot hold never gets in: NUL (Postgres refuses it in text) and lone surrogates
(JSON may escape one, UTF-8 cannot carry it). Checked in path, query and JSON body of every management
call, before any handler runs, so a bad value is a 422, not a 500 or a row that breaks its list later."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from hub.connectors.parse import storable
from hub.errors import HubError


def _bad(text: str) -> bool:
    return storable(text, len(text)) != text  # what ingest would have to clean


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _refuse(where: str) -> HubError:
    return HubError(422, "invalid_text", f"{where} holds a NUL character or an invalid (lone surrogate) character")


class TextGuardRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            if any(_bad(v) for v in request.path_params.values() if isinstance(v, str)):
                raise _refuse("the path")
            if any(_bad(k) or _bad(v) for k, v in request.query_params.multi_items()):
                raise _refuse("the query string")
            if request.method in ("POST", "PUT", "PATCH"):
                body = await request.body()  # cached: the handler reads it again
                if body:
                    try:
                        data = json.loads(body)
                    except (ValueError, RecursionError):
                        data = None  # the handler answers 400 malformed_body
                    if any(_bad(s) for s in _strings(data)):
                        raise _refuse("the body")
            return await handler(request)

        return guarded
