"""The audit trail: who changed what, and when (field names only, never values).

Handlers call :func:`record` with the connection of their own transaction, so a change and its record
commit together; where a change commits on its own, they pass the engine and it is recorded right after.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.auth.principal import Principal
from hub.db import tables as t
from hub.ids import new_id

_TEXT_MAX = 300


def _cut(text: str) -> str:
    return text[:_TEXT_MAX]


def audit_row(
    who: Principal,
    resource: str,
    resource_id: str,
    action: str,
    fields: Iterable[str] = (),
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("aud"),
        "at": time.time(),
        "actor_kind": who.kind,
        "actor_id": _cut(who.id),
        "actor_name": _cut(who.name),
        "resource": resource,
        "resource_id": _cut(resource_id),
        "action": action,
        "fields": sorted(set(fields)),
        "details": details,
    }


async def record(
    db: AsyncConnection | AsyncEngine,
    who: Principal,
    resource: str,
    resource_id: str,
    action: str,
    fields: Iterable[str] = (),
    details: dict[str, Any] | None = None,
) -> None:
    """Record that ``who`` did ``action`` on ``resource`` ``resource_id``, changing ``fields`` (names).

    ``details`` holds ids and filters, never a secret value."""
    row = audit_row(who, resource, resource_id, action, fields, details)
    if isinstance(db, AsyncConnection):
        await db.execute(t.audit_log.insert().values(**row))
        return
    async with db.begin() as conn:
        await conn.execute(t.audit_log.insert().values(**row))
