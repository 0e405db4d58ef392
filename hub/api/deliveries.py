"""Deliveries: one per (event, route); each keeps every attempt."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from hub.api.common import AdminKey, ReadKey, RuntimeDep, iso, now
from hub.api.error_docs import conflict
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.db import tables as t
from hub.errors import HubError, not_found

router = APIRouter(prefix="/api/v1", tags=["deliveries"], route_class=TextGuardRoute)
DeliveryStatus = Literal["pending", "sending", "delivered", "dead", "failed", "skipped", "folded"]


class AttemptOut(BaseModel):
    id: str
    number: int
    started_at: str | None
    latency_ms: float
    outcome: str
    status_code: int | None
    error: str | None
    response_excerpt: str | None


class DeliveryOut(BaseModel):
    id: str
    event_id: str
    route_id: str
    target_id: str
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    last_status_code: int | None
    idempotency_key: str
    created_at: str | None
    delivered_at: str | None
    mapping_version: str | None = Field(
        None,
        description="The mapping that rendered it: builtin:<name>, <name>@<version> (managed), or inline.",
    )
    remote_id: str | None = Field(None, description="The post the target created (its id), when it said.")
    remote_url: str | None = Field(None, description="A link to that post, when the target gave one.")
    folded_into: str | None = Field(
        None, description="Status folded: the delivery that carried this event (coalesced, or in a digest)."
    )


class DeliveryDetail(DeliveryOut):
    attempt_log: list[AttemptOut]


def delivery_out(r: Any) -> DeliveryOut:
    pending = r["status"] in ("pending", "sending")
    return DeliveryOut(
        id=r["id"],
        event_id=r["event_id"],
        route_id=r["route_id"],
        target_id=r["target_id"],
        status=r["status"],
        attempts=r["attempts"],
        next_attempt_at=iso(r["next_attempt_at"]) if pending else None,
        last_error=r["last_error"],
        last_status_code=r["last_status_code"],
        idempotency_key=r["id"],
        created_at=iso(r["created_at"]),
        delivered_at=iso(r["delivered_at"]),
        mapping_version=r.get("mapping_version"),
        remote_id=r.get("remote_id"),
        remote_url=r.get("remote_url"),
        folded_into=r.get("folded_into"),
    )


def attempt_out(a: Any) -> AttemptOut:
    return AttemptOut(
        id=a["id"],
        number=a["number"],
        started_at=iso(a["started_at"]),
        latency_ms=a["latency_ms"],
        outcome=a["outcome"],
        status_code=a["status_code"],
        error=a["error"],
        response_excerpt=a["response_excerpt"],
    )


@router.get("/deliveries", response_model=list[DeliveryOut], summary="List deliveries, newest first")
async def list_deliveries(
    rt: RuntimeDep,
    _: ReadKey,
    status: DeliveryStatus | None = None,
    target_id: str | None = None,
    event_id: str | None = None,
    before: str | None = None,
    limit: int = Query(50, ge=1, le=500),
) -> list[DeliveryOut]:
    d = t.deliveries
    stmt = sa.select(d).order_by(d.c.id.desc()).limit(limit)
    for col, value in ((d.c.status, status), (d.c.target_id, target_id), (d.c.event_id, event_id)):
        if value:
            stmt = stmt.where(col == value)
    if before:
        stmt = stmt.where(d.c.id < before)
    async with rt.engine.connect() as conn:
        return [delivery_out(r) for r in (await conn.execute(stmt)).mappings()]


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail, summary="A delivery with its attempts")
async def get_delivery(delivery_id: str, rt: RuntimeDep, _: ReadKey) -> DeliveryDetail:
    async with rt.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.deliveries).where(t.deliveries.c.id == delivery_id))).mappings().first()
        if row is None:
            raise not_found("delivery", delivery_id)
        atts = (
            (
                await conn.execute(
                    sa.select(t.attempts).where(t.attempts.c.delivery_id == delivery_id).order_by(t.attempts.c.id)
                )
            )
            .mappings()
            .all()
        )
    return DeliveryDetail(**delivery_out(row).model_dump(), attempt_log=[attempt_out(a) for a in atts])


@router.post(
    "/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a dead, failed or skipped delivery again now",
    responses=conflict("delivery_not_retryable"),
)
async def retry_delivery(delivery_id: str, rt: RuntimeDep, who: AdminKey) -> DeliveryOut:
    d = t.deliveries
    ts = now()
    route_alive = sa.exists().where(t.routes.c.id == d.c.route_id, t.routes.c.target_id == d.c.target_id)
    async with rt.engine.begin() as conn:
        if rt.engine.dialect.name == "postgresql":  # the event first, as a replay does: retention waits for us
            event_of = sa.select(d.c.event_id).where(d.c.id == delivery_id).scalar_subquery()
            await conn.execute(sa.select(t.events.c.id).where(t.events.c.id == event_of).with_for_update())
        res = await conn.execute(
            sa.update(d)
            .where(d.c.id == delivery_id, d.c.status.in_(("dead", "failed", "skipped", "pending")), route_alive)
            .values(status="pending", next_attempt_at=ts, updated_at=ts, retry_base=d.c.attempts)  # a fresh schedule
        )
        row = (await conn.execute(sa.select(d).where(d.c.id == delivery_id))).mappings().first()
        if res.rowcount:
            await record(conn, who, "delivery", delivery_id, "retry")
    if row is None:
        raise not_found("delivery", delivery_id)
    if res.rowcount == 0:
        reason = f"delivery is {row['status']}" if row["status"] in ("delivered", "sending") else "its route is gone"
        raise HubError(409, "delivery_not_retryable", reason)
    await rt.dispatcher.notify()
    return delivery_out(row)
