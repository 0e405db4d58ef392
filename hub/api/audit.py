"""The audit trail, readable by admins: who changed what, when."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hub.api.common import AdminKey, IsoDateTime, RuntimeDep, iso
from hub.api.operations import utc
from hub.api.text_guard import TextGuardRoute
from hub.db import tables as t

router = APIRouter(prefix="/api/v1", tags=["audit"], route_class=TextGuardRoute)


class Actor(BaseModel):
    kind: str = Field(description="api_key | oidc | cli | system")
    id: str = Field(description="The API key's id, the OIDC subject, or cli:<user>.")
    name: str = Field(description="The API key's name, the user's e-mail, or the user name.")


class AuditEntry(BaseModel):
    id: str
    at: str | None
    actor: Actor
    resource: str = Field(description="source | target | route | key | connector | delivery | event | job")
    resource_id: str
    action: str = Field(description="create | update | delete | retry | bulk_retry | replay | breaker_reset")
    fields: list[str] = Field(description="Names of the fields the change set (never their values).")
    details: dict[str, Any] | None = Field(description="Ids and filters of the operation, never a secret.")


def _entry(r: Any) -> AuditEntry:
    return AuditEntry(
        id=r["id"],
        at=iso(r["at"]),
        actor=Actor(kind=r["actor_kind"], id=r["actor_id"], name=r["actor_name"]),
        resource=r["resource"],
        resource_id=r["resource_id"],
        action=r["action"],
        fields=r["fields"] or [],
        details=r["details"],
    )


@router.get("/audit", response_model=list[AuditEntry], summary="The audit trail, newest first")
async def list_audit(
    rt: RuntimeDep,
    _: AdminKey,
    resource: str | None = Query(None, description="Only this kind of resource, e.g. `target`."),
    resource_id: str | None = Query(None, description="Only this resource."),
    actor: str | None = Query(None, description="An API key id or name, an OIDC subject or e-mail."),
    action: str | None = None,
    since: IsoDateTime | None = Query(None, description="At or after (ISO 8601; UTC without a zone)."),
    until: IsoDateTime | None = Query(None, description="Before (ISO 8601; UTC without a zone)."),
    before: str | None = Query(None, description="An entry id: list entries older than it (pagination)."),
    limit: int = Query(100, ge=1, le=1000),
) -> list[AuditEntry]:
    a = t.audit_log
    stmt = sa.select(a).order_by(a.c.id.desc()).limit(limit)
    for column, value in ((a.c.resource, resource), (a.c.resource_id, resource_id), (a.c.action, action)):
        if value:
            stmt = stmt.where(column == value)
    if actor:
        stmt = stmt.where(sa.or_(a.c.actor_id == actor, a.c.actor_name == actor))
    if since:
        stmt = stmt.where(a.c.at >= utc(since).timestamp())
    if until:
        stmt = stmt.where(a.c.at < utc(until).timestamp())
    if before:
        stmt = stmt.where(a.c.id < before)
    async with rt.engine.connect() as conn:
        return [_entry(r) for r in (await conn.execute(stmt)).mappings()]
