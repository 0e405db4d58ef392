"""POST /hooks/{source_id} in plain ASGI, in front of the FastAPI app: the hot path skips its middleware
stack, routing and dependency injection.

The FastAPI route in ``router.py`` documents the same endpoint (OpenAPI, Swagger UI) and runs the same
``core.ingest``. `hub serve` answers webhooks even earlier, in its HTTP protocol (``hub.front``), with
the same :func:`answer`; this ASGI wrapper serves them where the app runs under another server (tests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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


def hook_source(method: str, path: str) -> str | None:
    """The source id when this request is one for the ingest endpoint, else None."""
    if method not in METHODS or not path.startswith(PREFIX):
        return None
    source_id = path[len(PREFIX) :]
    return source_id if source_id and "/" not in source_id else None


def content_length_over(headers: Any, limit: int) -> bool:
    return any(name.lower() == b"content-length" and value.isdigit() and int(value) > limit for name, value in headers)


async def answer(rt: Runtime, source_id: str, scope: Mapping[str, Any], body: bytes) -> Reply:
    """The whole answer to a request for the ingest endpoint whose body was read: never raises."""
    try:
        raw, base = raw_request(scope, body, rt.settings.public_url)
        return await ingest(rt, source_id, raw, base)
    except HubError as exc:
        return error_reply(exc)
    except Exception:  # a bug, not bad input: still a JSON answer, and the cause in the log
        log.exception("unhandled error in ingest", extra={"source_id": source_id})
        return internal_error()


def internal_error() -> Reply:
    return error_reply(HubError(500, "internal_error", "internal error; see the server log"))


def answer_too_large(rt: Runtime, source_id: str) -> Reply:
    return error_reply(too_large(rt, source_id))


class IngestFastPath:
    def __init__(self, app: FastAPI, inner: Any = None) -> None:
        self.app = app
        self.inner = inner if inner is not None else app  # what serves everything else (the app, guarded)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        source_id = hook_source(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if source_id is None:
            await self.inner(scope, receive, send)
            return
        rt: Runtime = self.app.state.runtime
        reply = await self._handle(rt, source_id, scope, receive)
        headers = [
            (b"content-type", reply.media_type.encode("latin-1")),
            (b"content-length", str(len(reply.body)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers),
        ]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else reply.body})

    async def _handle(self, rt: Runtime, source_id: str, scope: Scope, receive: Any) -> Reply:
        limit = rt.settings.max_body_bytes
        if content_length_over(scope["headers"], limit):
            return answer_too_large(rt, source_id)
        chunks = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return error_reply(HubError(400, "client_disconnected", "the client went away before the body arrived"))
            chunks += message.get("body", b"")
            if len(chunks) > limit:
                return answer_too_large(rt, source_id)
            if not message.get("more_body"):
                break
        return await answer(rt, source_id, scope, bytes(chunks))
