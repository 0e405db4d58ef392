"""An ASGI layer in front of the app: /api/* wants a known credential before any body is read, and no
request body (webhooks apart) may exceed HUB_MAX_API_BODY_BYTES.

It rejects early what the key dependency (``hub.api.common.require``) would reject later, so that an
unauthenticated client cannot make the process read, parse and walk a huge body first:

* /api/* without ``Authorization: Bearer <token>``: 401 ``unauthorized``;
* a token that :data:`CredentialCheck` does not know: 401 ``unauthorized``. The default check looks the
  key's hash up among the API keys (known keys are remembered for ``KNOWN_TTL`` seconds; the
  dependency still checks every request, so a revoked key is refused at once all the same). Tokens that
  look like JWTs (three dot-separated base64url parts) pass through untouched: the dependency that
  validates them decides;
* a body announced (Content-Length) over the cap: 413 ``body_too_large`` without reading it; a body
  without a length is counted as it is read and refused the moment it exceeds the cap.

Scopes (admin vs read) stay with the dependency. Bodies are read whole (at most the cap) before the
app runs, so the app never sees a body that could still turn out too large.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import sqlalchemy as sa

from hub.auth.session import SESSION_COOKIE
from hub.crypto import hash_api_key
from hub.db import tables as t
from hub.errors import HubError
from hub.runtime import Runtime

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Says whether a bearer token is a credential hub knows (the scope is checked later, by the dependency).
CredentialCheck = Callable[[Runtime, str], Awaitable[bool]]

KNOWN_TTL = 5.0  # seconds a known key is trusted by this early check
KNOWN_MAX = 1024  # remembered keys at most
_JWT = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
_UNAUTHORIZED = "an API key is required: Authorization: Bearer <key>"


def looks_like_jwt(token: str) -> bool:
    """Three dot-separated base64url parts: left to the dependency that validates bearer JWTs."""
    return len(token) < 16384 and _JWT.match(token) is not None


class KnownKeys:
    """The default :data:`CredentialCheck`: the token's hash is among the API keys."""

    def __init__(self, ttl: float = KNOWN_TTL) -> None:
        self._ttl = ttl
        self._known: dict[str, float] = {}  # key hash -> until (monotonic)

    async def __call__(self, rt: Runtime, token: str) -> bool:
        digest = hash_api_key(token)
        now = time.monotonic()
        until = self._known.get(digest)
        if until is not None and until > now:
            return True
        async with rt.engine.connect() as conn:
            found = await conn.scalar(sa.select(t.api_keys.c.id).where(t.api_keys.c.key_hash == digest))
        if found is None:
            self._known.pop(digest, None)
            return False
        if len(self._known) >= KNOWN_MAX:
            self._known.clear()
        self._known[digest] = now + self._ttl
        return True


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            token = token.strip()
            return token if scheme.lower() == "bearer" and token else None
    return None


def _console_session(scope: Scope) -> bool:
    """A signed-in console's session cookie (SSO): the dependency then checks its scope and CSRF header."""
    auth = getattr(getattr(scope.get("app"), "state", None), "auth", None)
    if auth is None:
        return False
    for name, value in scope["headers"]:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, cookie = part.strip().partition("=")
                if key == SESSION_COOKIE and auth.sessions.is_session(cookie):
                    return True
    return False


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length, None without one (chunked or no body); -1 when it is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return None


def _has_body(scope: Scope) -> bool:
    return any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])


async def _reject(send: Send, exc: HubError) -> None:
    body = orjson.dumps(exc.body())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ApiGuard:
    """See the module. ``runtime`` finds the running hub (default: the Starlette app's state)."""

    def __init__(
        self,
        app: ASGIApp,
        is_known: CredentialCheck | None = None,
        runtime: Callable[[Scope], Runtime] | None = None,
    ) -> None:
        self.app = app
        self.is_known: CredentialCheck = is_known or KnownKeys()
        self._runtime = runtime or _app_runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/hooks/"):  # webhooks have their own limit (HUB_MAX_BODY_BYTES)
            await self.app(scope, receive, send)
            return
        rt = self._runtime(scope)
        if path.startswith("/api/"):
            token = bearer_token(scope)
            if token is None and not _console_session(scope):
                await _reject(send, HubError(401, "unauthorized", _UNAUTHORIZED))
                return
            if token is not None and not looks_like_jwt(token):
                try:
                    known = await self.is_known(rt, token)
                except Exception:  # the database is down: let the dependency answer as it does
                    known = True
                if not known:
                    await _reject(send, HubError(401, "unauthorized", "unknown API key"))
                    return
        if not _has_body(scope):
            await self.app(scope, receive, send)
            return
        limit = rt.settings.max_api_body_bytes
        too_large = HubError(413, "body_too_large", f"body over {limit} bytes")
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _reject(send, too_large)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _reject(send, too_large)
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read by the guard, as one message; then whatever comes next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _app_runtime(scope: Scope) -> Runtime:
    rt: Runtime = scope["app"].state.runtime
    return rt
