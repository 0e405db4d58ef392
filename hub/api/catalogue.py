"""The connector catalogue, custom connectors registered over REST, the inbox, the mappings."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, ValidationError

from hub.api.common import AdminKey, ReadKey, RuntimeDep, iso, now
from hub.api.error_docs import conflict
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.connectors.spec import ConnectorSpec
from hub.db import tables as t
from hub.errors import HubError, invalid, not_found
from hub.mapping.post import Post

router = APIRouter(prefix="/api/v1", tags=["catalogue"], route_class=TextGuardRoute)


class ConnectorOut(BaseModel):
    id: str
    title: str
    description: str
    docs: str
    events: dict[str, str]
    settings_schema: dict[str, Any]
    custom: bool


class InboxPost(BaseModel):
    id: str
    target_id: str
    delivery_id: str
    event_id: str
    created_at: str | None
    post: Post


def _connector_out(spec: ConnectorSpec, custom: bool) -> ConnectorOut:
    return ConnectorOut(
        id=spec.id,
        title=spec.title,
        description=spec.description,
        docs=spec.docs,
        events=spec.events,
        settings_schema=spec.settings_schema,
        custom=custom,
    )


async def _custom_ids(rt: Any) -> set[str]:
    async with rt.engine.connect() as conn:
        return {r[0] for r in await conn.execute(sa.select(t.custom_connectors.c.id))}


@router.get("/connectors", response_model=list[ConnectorOut], summary="The connector catalogue")
async def list_connectors(rt: RuntimeDep, _: ReadKey) -> list[ConnectorOut]:
    await rt.cache.refresh_if_stale()  # custom connectors registered by another process
    custom = await _custom_ids(rt)
    return [_connector_out(s, s.id in custom) for s in rt.connectors.all()]


@router.get("/connectors/{connector_id}", response_model=ConnectorSpec, summary="A connector's full spec")
async def get_connector(connector_id: str, rt: RuntimeDep, _: ReadKey) -> ConnectorSpec:
    spec = await rt.cache.connector(connector_id)
    if spec is None:
        raise not_found("connector", connector_id)
    return spec


@router.post(
    "/connectors",
    status_code=201,
    response_model=ConnectorOut,
    summary="Register a custom connector from a spec (same format as connectors/*.yaml)",
    responses=conflict("connector_exists"),
)
async def create_connector(body: dict[str, Any], rt: RuntimeDep, who: AdminKey) -> ConnectorOut:
    try:
        spec = ConnectorSpec.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise invalid(f"invalid connector spec: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    existing = await rt.cache.connector(spec.id)
    if existing is not None and spec.id not in await _custom_ids(rt):
        raise HubError(409, "connector_exists", f"{spec.id} is a built-in connector")
    async with rt.engine.begin() as conn:
        await conn.execute(sa.delete(t.custom_connectors).where(t.custom_connectors.c.id == spec.id))
        await conn.execute(t.custom_connectors.insert().values(id=spec.id, spec=spec.model_dump(), created_at=now()))
        await record(conn, who, "connector", spec.id, "create", body.keys())
    rt.connectors.add(spec)
    rt.cache.invalidate()
    return _connector_out(spec, True)


@router.delete(
    "/connectors/{connector_id}",
    status_code=204,
    summary="Remove a custom connector no source uses",
    responses=conflict("connector_in_use"),
)
async def delete_connector(connector_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    async with rt.engine.begin() as conn:
        used = await conn.scalar(sa.select(t.sources.c.id).where(t.sources.c.connector == connector_id).limit(1))
        if used is not None:
            raise HubError(409, "connector_in_use", f"source {used} uses {connector_id}: delete it first")
        res = await conn.execute(sa.delete(t.custom_connectors).where(t.custom_connectors.c.id == connector_id))
        if res.rowcount == 0:
            raise not_found("custom connector", connector_id)
        await record(conn, who, "connector", connector_id, "delete")
    rt.connectors.remove(connector_id)


@router.get("/inbox", response_model=list[InboxPost], summary="Posts delivered to inbox targets, newest first")
async def inbox(
    rt: RuntimeDep, _: ReadKey, target_id: str | None = None, limit: int = Query(50, ge=1, le=500)
) -> list[InboxPost]:
    stmt = sa.select(t.inbox_posts).order_by(t.inbox_posts.c.id.desc()).limit(limit)
    if target_id:
        stmt = stmt.where(t.inbox_posts.c.target_id == target_id)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [
        InboxPost(
            id=r["id"],
            target_id=r["target_id"],
            delivery_id=r["delivery_id"],
            event_id=r["event_id"],
            created_at=iso(r["created_at"]),
            post=Post.model_validate(r["post"]),
        )
        for r in rows
    ]
