"""The HTTP/1.1 protocol of `hub serve`: uvicorn's httptools protocol, with two additions.

* Webhooks (``GET``/``HEAD``/``POST /hooks/{source_id}``) are answered here, without ASGI: the body is
  collected as the parser hands it over, :func:`hub.ingest.fastpath.answer` gives the whole reply and it
  is written as one buffer. The app (management API, docs, health, metrics) is served by uvicorn as
  before; requests on one connection are answered in order, whichever path they take.
* Slow clients are cut off, for webhooks and the API alike: a request whose headers are not complete
  ``header_timeout`` seconds after its first byte (or a new connection that sends nothing for that
  long), and a body that arrives slower than ``min_body_rate`` bytes/s on average once
  ``body_rate_grace`` seconds have passed, get ``408`` and the connection is closed. Time when the
  server itself stopped reading (a handler not reading its body yet) does not count.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from hub.connectors.connector import Reply
from hub.ingest.fastpath import METHODS, answer, answer_too_large, internal_error
from hub.runtime import Runtime

log = logging.getLogger("hub.front")
HOOK_PREFIX = b"/hooks/"
CHECK_EVERY = 1.0  # seconds between two looks at a body's rate
LINGER = 2.0  # seconds a refused body is still read (and dropped) so that the client sees the answer
DISCARD_LIMIT = 1024 * 1024  # body bytes of an already answered request dropped before closing
_HEADER_VALUE_OK = frozenset(range(0x20, 0x7F)) | frozenset(range(0x80, 0x100)) | {0x09}
_TIMEOUT_BODY = b'{"error":{"code":"request_timeout","message":"the request came too slowly"}}'
_TIMEOUT_REPLY = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)

# Where a connection is in its current request.
_IDLE, _HEADERS, _BODY = 0, 1, 2


@dataclass(frozen=True)
class SlowClientLimits:
    header_timeout: float = 10.0  # seconds from a request's first byte (or the connection) to its last header
    min_body_rate: float = 1024.0  # bytes/s on average over the body so far; 0 = no minimum
    body_rate_grace: float = 10.0  # seconds of body before the rate counts


class HookFront:
    """What the protocol needs of hub: the runtime, once the app's lifespan built it."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime
        self._rt: Runtime | None = None

    @property
    def runtime(self) -> Runtime:
        rt = self._rt
        if rt is None:  # the runtime exists once the lifespan has started, and stays
            rt = self._rt = self._runtime()
        return rt


class _HookCycle:
    """One webhook request: stands where uvicorn keeps its ``RequestResponseCycle`` (same attributes the
    protocol and the server read: ``response_complete``, ``keep_alive``, ``disconnected``,
    ``message_event``), but reads no ASGI messages."""

    __slots__ = (
        "_waiter",
        "body",
        "disconnected",
        "expect_100_continue",
        "keep_alive",
        "limit",
        "method",
        "more_body",
        "on_response",
        "protocol",
        "response_complete",
        "response_started",
        "scope",
        "source_id",
        "too_large",
    )

    def __init__(
        self, protocol: FrontProtocol, scope: dict[str, Any], source_id: str, keep_alive: bool, expect_100: bool
    ) -> None:
        self.protocol = protocol
        self.scope = scope
        self.method: str = scope["method"]
        self.source_id = source_id
        self.keep_alive = keep_alive
        self.expect_100_continue = expect_100
        self.body = bytearray()
        self.more_body = True
        self.limit = protocol.front.runtime.settings.max_body_bytes
        self.too_large = False
        self.disconnected = False
        self.response_started = False
        self.response_complete = False
        self.on_response: Callable[[], None] = protocol.on_response_complete
        self._waiter: asyncio.Future[None] | None = None

    @property
    def message_event(self) -> _HookCycle:
        return self

    def set(self) -> None:
        """Something happened (body complete, too large, disconnected): wake the task if it waits."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def run_asgi(self, _app: object) -> None:  # the name uvicorn's pipelining calls
        proto = self.protocol
        try:
            if self.more_body and not self.too_large and not self.disconnected:
                if self.expect_100_continue and not proto.transport.is_closing():
                    proto.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    proto.resume_body()
                self._waiter = proto.loop.create_future()
                await self._waiter
            if self.disconnected or self.response_started:
                return
            rt = proto.front.runtime
            if self.too_large:
                self.keep_alive = False  # the rest of the body may still be on its way
                self.write(answer_too_large(rt, self.source_id))
                return
            reply = await answer(rt, self.source_id, self.scope, bytes(self.body))
            if not self.disconnected:
                self.write(reply)
        except Exception:
            log.exception("unhandled error answering a webhook", extra={"source_id": self.source_id})
            if not self.response_started and not self.disconnected and not proto.transport.is_closing():
                self.keep_alive = False
                self.write(internal_error())
        finally:
            self.on_response = _nothing

    def write(self, reply: Reply) -> None:
        self.response_started = True
        proto = self.protocol
        extra = reply.headers
        if extra and not all(_header_ok(k, v) for k, v in extra):
            reply, extra = internal_error(), ()
        parts = [STATUS_LINE[reply.status]]
        for default_name, default_value in proto.server_state.default_headers:
            parts += (default_name, b": ", default_value, b"\r\n")
        body = reply.body
        parts.append(b"content-type: %s\r\ncontent-length: %d\r\n" % (reply.media_type.encode("latin-1"), len(body)))
        for name, text in extra:
            parts += (name.lower().encode("latin-1"), b": ", text.encode("latin-1"), b"\r\n")
        if not self.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        if self.method != "HEAD":
            parts.append(body)
        proto.transport.write(b"".join(parts))
        self.response_complete = True
        if not self.keep_alive:
            if self.more_body:
                proto.linger_close()
            else:
                proto.transport.close()
        self.on_response()


def _nothing() -> None:
    return None


def _header_ok(name: str, value: str) -> bool:
    try:
        raw_name, raw_value = name.encode("latin-1"), value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return (
        bool(raw_name)
        and raw_name.isascii()
        and all(b in _HEADER_VALUE_OK for b in raw_value)
        and (b":" not in raw_name and b" " not in raw_name and b"\r" not in raw_name and b"\n" not in raw_name)
    )


class FrontProtocol(HttpToolsProtocol):
    """See the module. ``front`` and ``limits`` are set on the subclass :func:`protocol_class` makes."""

    front: ClassVar[HookFront]
    limits: ClassVar[SlowClientLimits]

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._phase = _IDLE
        self._began = self.loop.time()  # a new connection must send a request's headers within the timeout
        self._body_bytes = 0
        self._body_active = 0.0
        self._header_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.limits.header_timeout, self._on_header_timeout
        )
        self._body_timer: asyncio.TimerHandle | None = None
        self._proxy: ProxyHeadersMiddleware | None = self.app if isinstance(self.app, ProxyHeadersMiddleware) else None
        self._discarded = 0
        self._lingering = False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return
        super().data_received(data)
        # Timers only for a request that did not arrive whole in this read (the common case needs none).
        if self._phase == _HEADERS and self._header_timer is None and not self.transport.is_closing():
            delay = self._began + self.limits.header_timeout - self.loop.time()
            self._header_timer = self.loop.call_later(max(delay, 0.0), self._on_header_timeout)
        elif (
            self._phase == _BODY
            and self._body_timer is None
            and self.limits.min_body_rate > 0
            and not self.transport.is_closing()
        ):
            self._body_timer = self.loop.call_later(CHECK_EVERY, self._on_body_check)

    # parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._phase = _HEADERS
        self._began = self.loop.time()

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        self._body_bytes = 0
        self._body_active = 0.0
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self.url.startswith(HOOK_PREFIX):
            method = self.parser.get_method().decode("ascii")
            if method in METHODS and not self.parser.should_upgrade():
                parsed = httptools.parse_url(self.url)
                path = parsed.path.decode("ascii")
                if "%" in path:
                    path = urllib.parse.unquote(path)
                source_id = path[len(HOOK_PREFIX) :]
                if source_id and "/" not in source_id:
                    self._start_hook(method, path, parsed.query or b"", source_id)
                    return
        super().on_headers_complete()

    def _start_hook(self, method: str, path: str, query: bytes, source_id: str) -> None:
        scope = self.scope
        http_version = self.parser.get_http_version()
        scope["method"] = method
        if http_version != "1.1":
            scope["http_version"] = http_version
        scope["path"] = self.root_path + path
        scope["query_string"] = query
        if self._proxy is not None and self.client and self.client[0] in self._proxy.trusted_hosts:
            for name, value in self.headers:  # what uvicorn's ProxyHeadersMiddleware does for the app
                if name == b"x-forwarded-proto":
                    proto = value.decode("latin-1").strip()
                    if proto in ("http", "https"):
                        scope["scheme"] = proto
        cycle = _HookCycle(
            self,
            scope,  # type: ignore[arg-type]
            source_id,
            http_version != "1.0" and self.parser.should_keep_alive(),
            self.expect_100_continue,
        )
        cycle.too_large = _declared_length(self.headers) > cycle.limit
        existing = self.cycle
        self.cycle = cycle  # type: ignore[assignment]
        if existing is None or existing.response_complete:
            self._start_asgi_task(cycle, self.app)  # type: ignore[arg-type]
        else:  # pipelined behind a request still being answered
            self.flow.pause_reading()
            self.pipeline.appendleft((cycle, self.app))  # type: ignore[arg-type]

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        cycle = self.cycle
        if cycle.response_complete:  # answered without its body (refused): dropped, up to a limit
            self._discarded += len(body)
            if self._discarded > DISCARD_LIMIT:
                self.linger_close()
            return
        if not isinstance(cycle, _HookCycle):
            super().on_body(body)
            return
        if cycle.too_large:
            return
        cycle.body += body
        if len(cycle.body) > cycle.limit:
            cycle.too_large = True
            cycle.body = bytearray()
            cycle.set()

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        cycle = self.cycle
        if not isinstance(cycle, _HookCycle):
            super().on_message_complete()
            return
        cycle.more_body = False
        cycle.set()

    def on_response_complete(self) -> None:
        self._discarded = 0
        super().on_response_complete()

    def linger_close(self) -> None:
        """Close after an answer while the client may still be sending: closing at once with unread data
        resets the connection, and the client may lose the answer. Half-close, drop what still comes
        for ``LINGER`` seconds (or until the client closes), then close."""
        if self._lingering or self.transport.is_closing():
            return
        self._lingering = True
        self._cancel_timers()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.transport.resume_reading()
        self._header_timer = self.loop.call_later(LINGER, self.transport.close)

    def eof_received(self) -> None:
        if self._lingering:
            self.transport.close()

    def resume_body(self) -> None:
        """A 100 Continue was sent: the body's clock starts now."""
        self._body_active = 0.0
        self._body_bytes = 0

    # slow clients

    def _cancel_timers(self) -> None:
        for timer in (self._header_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._header_timer = self._body_timer = None

    def _on_header_timeout(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if self._phase == _HEADERS or (self._phase == _IDLE and cycle is None):
            self._timed_out(reply=self._phase == _HEADERS)

    def _on_body_check(self) -> None:
        self._body_timer = None
        if self._phase != _BODY or self.transport.is_closing():
            return
        cycle = self.cycle
        waiting = bool(getattr(cycle, "waiting_for_100_continue", False)) or (
            isinstance(cycle, _HookCycle) and cycle.expect_100_continue and cycle._waiter is None
        )
        if not self.flow.read_paused and not waiting:  # time the server was not reading does not count
            self._body_active += CHECK_EVERY
            limits = self.limits
            if self._body_active > limits.body_rate_grace and (
                self._body_bytes < limits.min_body_rate * self._body_active
            ):
                self._timed_out(reply=True)
                return
        self._body_timer = self.loop.call_later(CHECK_EVERY, self._on_body_check)

    def _timed_out(self, reply: bool) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the handler's answer, if any, goes nowhere
            cycle.message_event.set()
        started = cycle is not None and bool(getattr(cycle, "response_started", False))
        if reply and not started:
            self.transport.write(_TIMEOUT_REPLY)
        self._cancel_timers()
        self.transport.close()


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


def protocol_class(front: HookFront, limits: SlowClientLimits) -> type[FrontProtocol]:
    """A protocol class for uvicorn's ``http=`` setting, bound to this hub."""
    return type("HubFrontProtocol", (FrontProtocol,), {"front": front, "limits": limits})
