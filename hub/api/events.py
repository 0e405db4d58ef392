"""Events and deliveries: look, replay, retry."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query
from pydantic import BaseModel

from hub.api.common import AdminKey, IsoDateTime, ReadKey, RuntimeDep, iso, now
from hub.api.deliveries import DeliveryDetail, DeliveryOut, attempt_out, delivery_out
from hub.api.error_docs import conflict
from hub.api.operations import utc
from hub.api.stats import ID_MARGIN, id_floor
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.connectors.parse import ParseError
from hub.db import tables as t
from hub.errors import HubError, not_found
from hub.ingest.store import delivery_rows
from hub.mapping.context import stored_payload

router = APIRouter(prefix="/api/v1", tags=["events"], route_class=TextGuardRoute)
EventStatus = Literal["ignored", "unrouted", "pending", "delivered", "failed"]


class EventOut(BaseModel):
    id: str
    source_id: str
    connector: str
    type: str
    dedup_key: str | None
    subject: str | None
    status: str
    received_at: str | None


class EventDetail(EventOut):
    headers: dict[str, str]
    payload: Any
    deliveries: list[DeliveryDetail]


def _status_filter(status: str) -> Any:
    d = t.deliveries
    of_event = d.c.event_id == t.events.c.id
    if status in ("ignored", "unrouted"):
        return t.events.c.status == status
    if status == "pending":
        return sa.exists().where(of_event, d.c.status.in_(("pending", "sending")))
    if status == "failed":  # as _effective_status shows it: unfinished work comes first
        return sa.and_(
            sa.exists().where(of_event, d.c.status.in_(("dead", "failed"))),
            ~sa.exists().where(of_event, d.c.status.in_(("pending", "sending"))),
        )
    return sa.and_(
        t.events.c.status == "routed",
        ~sa.exists().where(of_event, d.c.status.notin_(("delivered", "skipped", "folded"))),
    )


def _effective_status(stored: str, statuses: set[str]) -> str:
    if stored != "routed" or not statuses:
        return stored
    if statuses & {"pending", "sending"}:
        return "pending"
    if statuses & {"dead", "failed"}:
        return "failed"
    return "delivered"


@router.get("/events", response_model=list[EventOut], summary="List events, newest first")
async def list_events(
    rt: RuntimeDep,
    _: ReadKey,
    source_id: str | None = Query(None, description="Only this source's events."),
    type: str | None = Query(None, description="Only events of this exact type, e.g. `issues.opened`."),
    status: EventStatus | None = Query(
        None,
        description="`ignored` (no route wanted it), `unrouted`, `pending` (a delivery still to send), "
        "`delivered` (every delivery done), `failed` (a dead letter, nothing left to send).",
    ),
    since: IsoDateTime | None = Query(None, description="Received at or after (ISO 8601; UTC without a zone)."),
    until: IsoDateTime | None = Query(None, description="Received before (ISO 8601; UTC without a zone)."),
    search: str | None = Query(
        None, alias="q", max_length=200, description="Text in the event's subject, type or id (any case)."
    ),
    before: str | None = Query(None, description="An event id: list events older than it (pagination)"),
    limit: int = Query(50, ge=1, le=500, description="At most this many events."),
) -> list[EventOut]:
    """Newest first; page with `before` set to the last id of a page."""
    e = t.events
    stmt = (
        sa.select(
            e.c.id, e.c.source_id, e.c.connector, e.c.type, e.c.dedup_key, e.c.subject, e.c.status, e.c.received_at
        )
        .order_by(e.c.id.desc())
        .limit(limit)
    )
    if source_id:
        stmt = stmt.where(e.c.source_id == source_id)
    if type:
        stmt = stmt.where(e.c.type == type)
    if status:
        stmt = stmt.where(_status_filter(status))
    if before:
        stmt = stmt.where(e.c.id < before)
    if since:  # ids are time-ordered: the primary key bounds the scan
        ts = utc(since).timestamp()
        stmt = stmt.where(e.c.received_at >= ts, e.c.id >= id_floor("evt", ts - ID_MARGIN))
    if until:
        stmt = stmt.where(e.c.received_at < utc(until).timestamp())
    if search:
        pattern = sa.func.lower(sa.literal("%" + search.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"))
        stmt = stmt.where(
            sa.or_(*(sa.func.lower(c).like(pattern, escape="/") for c in (e.c.subject, e.c.type, e.c.id)))
        )
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
        ids = [r["id"] for r in rows]
        by_event: dict[str, set[str]] = {}
        if ids:
            q = sa.select(t.deliveries.c.event_id, t.deliveries.c.status).where(t.deliveries.c.event_id.in_(ids))
            for ev_id, st in await conn.execute(q):
                by_event.setdefault(ev_id, set()).add(st)
    return [
        EventOut(
            id=r["id"],
            source_id=r["source_id"],
            connector=r["connector"],
            type=r["type"],
            dedup_key=r["dedup_key"],
            subject=r["subject"],
            status=_effective_status(r["status"], by_event.get(r["id"], set())),
            received_at=iso(r["received_at"]),
        )
        for r in rows
    ]


@router.get("/events/{event_id}", response_model=EventDetail, summary="An event with its deliveries and attempts")
async def get_event(event_id: str, rt: RuntimeDep, _: ReadKey) -> EventDetail:
    async with rt.engine.connect() as conn:
        ev = (await conn.execute(sa.select(t.events).where(t.events.c.id == event_id))).mappings().first()
        if ev is None:
            raise not_found("event", event_id)
        dels = (
            (
                await conn.execute(
                    sa.select(t.deliveries).where(t.deliveries.c.event_id == event_id).order_by(t.deliveries.c.id)
                )
            )
            .mappings()
            .all()
        )
        atts = (
            (
                await conn.execute(
                    sa.select(t.attempts)
                    .where(t.attempts.c.delivery_id.in_([d["id"] for d in dels]))
                    .order_by(t.attempts.c.id)
                )
            )
            .mappings()
            .all()
        )
    try:
        payload: Any = stored_payload(ev["payload"], ev["body"], ev["headers"], rt.connectors.get(ev["connector"]))
    except ParseError:  # a body no connector reads as JSON: shown as text
        payload = ev["body"].decode("utf-8", "replace")
    details = [
        DeliveryDetail(
            **delivery_out(d).model_dump(), attempt_log=[attempt_out(a) for a in atts if a["delivery_id"] == d["id"]]
        )
        for d in dels
    ]
    return EventDetail(
        id=ev["id"],
        source_id=ev["source_id"],
        connector=ev["connector"],
        type=ev["type"],
        dedup_key=ev["dedup_key"],
        subject=ev["subject"],
        status=_effective_status(ev["status"], {d["status"] for d in dels}),
        received_at=iso(ev["received_at"]),
        headers=ev["headers"],
        payload=payload,
        deliveries=details,
    )


@router.post(
    "/events/{event_id}/replay",
    status_code=202,
    response_model=list[DeliveryOut],
    summary="Deliver an event again through the routes that match it now",
    responses=conflict("no_matching_route"),
)
async def replay_event(event_id: str, rt: RuntimeDep, who: AdminKey) -> list[DeliveryOut]:
    async with rt.engine.connect() as conn:
        ev = (
            await conn.execute(
                sa.select(t.events.c.source_id, t.events.c.type, t.events.c.subject).where(t.events.c.id == event_id)
            )
        ).first()
    if ev is None:
        raise not_found("event", event_id)
    routes = await rt.cache.routes_for(ev.source_id, ev.type)
    if not routes:
        raise HubError(409, "no_matching_route", "no enabled route matches this event now")
    rows = delivery_rows(event_id, ev.subject, routes, now())
    async with rt.engine.begin() as conn:
        # the event row first, locked (on Postgres): a retention purge cannot take it from under us
        still = await conn.execute(sa.update(t.events).where(t.events.c.id == event_id).values(status="routed"))
        if still.rowcount == 0:
            raise not_found("event", event_id)
        await conn.execute(t.deliveries.insert(), rows)
        await record(conn, who, "event", event_id, "replay", details={"deliveries": [r["id"] for r in rows]})
    await rt.dispatcher.notify()
    return [delivery_out(r) for r in rows]
