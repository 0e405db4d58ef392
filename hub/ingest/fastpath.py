"""POST /hooks/{source_id} in plain ASGI, in front of the FastAPI app: the hot path skips its middleware
stack, routing and dependency injection.

The FastAPI route in ``router.py`` documents the same endpoint (OpenAPI, Swagger UI) and runs the same
``core.ingest``; in `hub serve` this wrapper answers first. Everything else goes to the app.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI

from hub.connectors.connector import Reply
from hub.errors import HubError
from hub.ingest.core import ingest, too_large
from hub.ingest.request import error_reply, raw_request
from hub.runtime import Runtime

log = logging.getLogger("hub.ingest")
PREFIX = "/hooks/"
METHODS = frozenset({"GET", "HEAD", "POST"})
Scope = dict[str, Any]


class IngestFastPath:
    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or scope["method"] not in METHODS or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        source_id = path[len(PREFIX) :]
        if not source_id or "/" in source_id:
            await self.app(scope, receive, send)
            return
        rt: Runtime = self.app.state.runtime
        try:
            reply = await self._handle(rt, source_id, scope, receive)
        except HubError as exc:
            reply = error_reply(exc)
        except Exception:  # a bug, not bad input: still a JSON answer, and the cause in the log
            log.exception("unhandled error in ingest", extra={"source_id": source_id})
            reply = error_reply(HubError(500, "internal_error", "internal error; see the server log"))
        headers = [
            (b"content-type", reply.media_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else reply.body})

    async def _handle(self, rt: Runtime, source_id: str, scope: Scope, receive: Any) -> Reply:
        limit = rt.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name.lower() == b"content-length" and value.isdigit() and int(value) > limit:
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
        raw, base = raw_request(scope, bytes(chunks), rt.settings.public_url)
        return await ingest(rt, source_id, raw, base)
