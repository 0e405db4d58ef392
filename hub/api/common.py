"""Shared API plumbing: the runtime, API key auth with scopes, timestamps."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field

from hub.crypto import hash_api_key
from hub.db import tables as t
from hub.errors import HubError, invalid, not_found
from hub.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer hub_…`")
SCOPES = ("read", "admin")


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


RuntimeDep = Annotated[Runtime, Depends(runtime)]


def iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def require(scope: str) -> Callable[..., Awaitable[str]]:
    """A dependency that admits keys holding ``scope`` (admin implies read); returns the key id."""

    async def check(request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> str:
        if creds is None or not creds.credentials:
            raise HubError(401, "unauthorized", "an API key is required: Authorization: Bearer <key>")
        rt = runtime(request)
        async with rt.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.api_keys.c.id, t.api_keys.c.scope).where(
                        t.api_keys.c.key_hash == hash_api_key(creds.credentials)
                    )
                )
            ).first()
        if row is None:
            raise HubError(401, "unauthorized", "unknown API key")
        if scope == "admin" and row.scope != "admin":
            raise HubError(403, "forbidden", "this API key may only read")
        return str(row.id)

    check.hub_scope = scope  # type: ignore[attr-defined]  # read by the OpenAPI error docs
    return check


ReadKey = Annotated[str, Depends(require("read"))]
AdminKey = Annotated[str, Depends(require("admin"))]


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
RetryStep = Annotated[float, Field(ge=0, le=MAX_RETRY_STEP, allow_inf_nan=False)]
RatePerSecond = Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]


def reject_nulls(given: dict[str, Any], *fields: str) -> None:
    """PATCH: ``null`` may clear an optional setting, never a required field."""
    for name in fields:
        if name in given and given[name] is None:
            raise invalid(f"{name} cannot be null", field=name)


async def is_admin(rt: Runtime, key_id: str) -> bool:
    async with rt.engine.connect() as conn:
        return await conn.scalar(sa.select(t.api_keys.c.scope).where(t.api_keys.c.id == key_id)) == "admin"
