"""POST /hooks/{source_id} in plain ASGI, in front of the FastAPI app: the hot path skips its middleware
stack, routing and dependency injection.

The FastAPI route in ``router.py`` documents the same endpoint (OpenAPI, Swagger UI) and runs the same
``core.ingest``; in `hub serve` this wrapper answers first. Everything else goes to the app.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI

from hub.connectors.verify import RawRequest
from hub.errors import HubError
from hub.ingest.core import ingest, too_large
from hub.runtime import Runtime

log = logging.getLogger("hub.ingest")
PREFIX = "/hooks/"
Scope = dict[str, Any]


class IngestFastPath:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] != "POST" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        source_id = path[len(PREFIX) :]
        if not source_id or "/" in source_id:
            await self.app(scope, receive, send)
            return
        rt: Runtime = self.app.state.runtime
        try:
            status, body = await self._handle(rt, source_id, scope, receive)
        except HubError as exc:
            status, body = exc.status, exc.body()
        except Exception:  # a bug, not bad input: still a JSON answer, and the cause in the log
            log.exception("unhandled error in ingest", extra={"source_id": source_id})
            status, body = 500, HubError(500, "internal_error", "internal error; see the server log").body()
        payload = json.dumps(body, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _handle(self, rt: Runtime, source_id: str, scope: Scope, receive: Any) -> tuple[int, dict[str, Any]]:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        limit = rt.settings.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise too_large(rt, source_id)
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise HubError(400, "client_disconnected", "the client went away before the body arrived")
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                raise too_large(rt, source_id)
            if not message.get("more_body"):
                break
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}{scope.get('root_path', '')}{scope['path']}"
        if query:
            url += "?" + query
        raw = RawRequest(body=bytes(chunks), headers=headers, method="POST", url=url, query=dict(parse_qsl(query)))
        answer = await ingest(rt, source_id, raw)
        return answer.status, answer.body
