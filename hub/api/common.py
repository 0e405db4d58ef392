"""Shared API plumbing: the runtime, authentication with scopes (API keys, OIDC, the console cookie), timestamps."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, Field

from hub.auth.oidc import looks_like_jwt
from hub.auth.principal import Principal
from hub.auth.service import auth_service
from hub.auth.session import CSRF_HEADER
from hub.crypto import hash_api_key
from hub.db import tables as t
from hub.errors import HubError, invalid, not_found
from hub.runtime import Runtime

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`Authorization: Bearer hub_…`) or, with single sign-on configured, "
    "an access token (JWT) from the identity provider. The console may use its session cookie instead.",
)
SCOPES = ("read", "admin")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


async def api_key_principal(rt: Runtime, key: str) -> Principal | None:
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(t.api_keys.c.id, t.api_keys.c.name, t.api_keys.c.scope).where(
                    t.api_keys.c.key_hash == hash_api_key(key)
                )
            )
        ).first()
    return None if row is None else Principal("api_key", str(row.id), str(row.name), str(row.scope))


async def _authenticate(request: Request, credentials: str | None) -> Principal:
    auth = auth_service(request)
    if credentials:
        who = await api_key_principal(runtime(request), credentials)
        if who is not None:
            return who
        if auth.oidc is not None and looks_like_jwt(credentials):
            return await auth.oidc.bearer_principal(credentials)
        raise HubError(401, "unauthorized", "unknown API key")
    who = auth.sessions.principal(request)
    if who is None:
        raise HubError(401, "unauthorized", "an API key is required: Authorization: Bearer <key>")
    if request.method not in _SAFE_METHODS and CSRF_HEADER.lower() not in request.headers:
        raise HubError(403, "csrf_header_missing", f"a change made with the console's cookie needs {CSRF_HEADER}")
    return who


def require(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers holding ``scope`` (admin implies read): an API key, an OIDC access
    token, or the console's session cookie. Returns who is calling (the audit trail names them)."""

    async def check(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        who = await _authenticate(request, creds.credentials if creds else None)
        if scope == "admin" and not who.is_admin:
            raise HubError(403, "forbidden", "these credentials may only read")
        return who

    check.hub_scope = scope  # type: ignore[attr-defined]  # read by the OpenAPI error docs
    return check


ReadKey = Annotated[Principal, Depends(require("read"))]
AdminKey = Annotated[Principal, Depends(require("admin"))]


def _iso_only(value: Any) -> Any:
    """A time is an ISO 8601 text: a bare number (which pydantic would read as UNIX seconds) is refused."""
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value.strip())):
        raise ValueError("a time is ISO 8601, e.g. 2026-11-01T00:00:00Z, not a number")
    return value


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


def now() -> float:
    return time.time()


async def find_row(rt: Runtime, table: sa.Table, ident: str) -> Any:
    """The row of ``table`` with this id, or None."""
    async with rt.engine.connect() as conn:
        return (await conn.execute(sa.select(table).where(table.c.id == ident))).mappings().first()


async def get_row(rt: Runtime, table: sa.Table, ident: str, what: str) -> Any:
    """The row of ``table`` with this id; 404 ``<what>_not_found`` when there is none."""
    row = await find_row(rt, table, ident)
    if row is None:
        raise not_found(what, ident)
    return row


MAX_RETRY_STEP = 7 * 86400.0
# strict: a JSON true is not 1 second
RetryStep = Annotated[float, Field(ge=0, le=MAX_RETRY_STEP, allow_inf_nan=False, strict=True)]
RatePerSecond = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False, strict=True)]


def reject_nulls(given: dict[str, Any], *fields: str) -> None:
    """PATCH: ``null`` may clear an optional setting, never a required field."""
    for name in fields:
        if name in given and given[name] is None:
            raise invalid(f"{name} cannot be null", field=name)
