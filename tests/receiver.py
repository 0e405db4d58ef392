"""A real local HTTP server standing in for an RSE: records requests, answers a programmable script.

The tests run it in their event loop (``serve_receiver``); the bench runs it in a process of its own
(``compact``: only what it measures is kept) and reads it back over ``GET /count`` and ``GET /records``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    query: str = ""


@dataclass
class Receiver:
    """ASGI app: answers ``script`` statuses in order (then ``default``), records every request; or,
    with ``respond``, whatever it returns for a request (status, headers, body): a fake RSE API."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    respond: Callable[[Received], tuple[int, dict[str, str], bytes]] | None = None
    compact: bool = False  # keep (arrival, Idempotency-Key, post.event_id) only, in ``records``
    records: list[tuple[float, str, str]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        arrived = time.time()
        if scope["method"] == "GET" and scope["path"] in ("/count", "/records"):
            await self._answer_records(scope["path"], send)
            return
        body = b""
        while True:
            msg = await receive()
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        parsed: Any
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            parsed = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        else:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = body.decode(errors="replace")
        got = Received(arrived, scope["path"], headers, parsed, 0, scope["query_string"].decode())
        answer = b"ok"
        if self.respond is not None:
            status, extra, answer = self.respond(got)
            extra = {"content-type": "application/json", **extra}
        else:
            status, extra = self.script.pop(0) if self.script else (self.default, {})
            extra = {"content-type": "text/plain", **extra}
        got.status = status
        if self.compact:
            post = parsed.get("post") if isinstance(parsed, dict) else None
            event_id = str(post.get("event_id", "")) if isinstance(post, dict) else ""
            self.records.append((arrived, headers.get("idempotency-key", ""), event_id))
        else:
            self.requests.append(got)
        if self.delay:
            await asyncio.sleep(self.delay)
        out_headers = [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": answer})

    async def _answer_records(self, path: str, send: Any) -> None:
        count = len(self.records) if self.compact else len(self.requests)
        data = {"count": count} if path == "/count" else {"records": self.records}
        body = json.dumps(data).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def idempotency_keys(self) -> list[str]:
        return [r.headers.get("idempotency-key", "") for r in self.requests]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_receiver(receiver: Receiver) -> AsyncIterator[Receiver]:
    receiver.port = free_port()
    config = uvicorn.Config(receiver, host="127.0.0.1", port=receiver.port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
