"""Commit an event and its deliveries in one transaction: a core insert, no ORM graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config_cache import RouteInfo
from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.ids import new_id


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    duplicate: bool
    delivery_ids: list[str]


@dataclass(frozen=True)
class NewEvent:
    source_id: str
    connector: str
    type: str
    dedup_key: str | None
    subject: str | None
    headers: dict[str, str]
    body: bytes
    received_at: float
    status: str


def delivery_rows(
    event_id: str, subject: str | None, routes: Sequence[RouteInfo], now: float
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for route in routes:
        did = new_id("dlv")
        rows.append(
            {
                "id": did,
                "event_id": event_id,
                "route_id": route.id,
                "target_id": route.target_id,
                "order_key": subject or did,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "lease_until": None,
                "last_error": None,
                "last_status_code": None,
                "created_at": now,
                "updated_at": now,
                "delivered_at": None,
            }
        )
    return rows


async def store_event(engine: AsyncEngine, ev: NewEvent, routes: Sequence[RouteInfo]) -> StoredEvent:
    """Insert the event unless its dedup key was seen; a duplicate returns the first event's id."""
    event_id = new_id("evt")
    values = {
        "id": event_id,
        "source_id": ev.source_id,
        "connector": ev.connector,
        "type": ev.type,
        "dedup_key": ev.dedup_key,
        "subject": ev.subject,
        "status": ev.status,
        "headers": ev.headers,
        "body": ev.body,
        "received_at": ev.received_at,
    }
    async with engine.begin() as conn:
        if ev.dedup_key is None:
            await conn.execute(t.events.insert().values(**values))
        else:
            stmt = insert_ignoring_conflicts(t.events, engine.dialect.name, "source_id", "dedup_key")
            inserted = (await conn.execute(stmt.values(**values).returning(t.events.c.id))).first()
            if inserted is None:
                first = await conn.scalar(
                    sa.select(t.events.c.id).where(
                        t.events.c.source_id == ev.source_id, t.events.c.dedup_key == ev.dedup_key
                    )
                )
                return StoredEvent(str(first), True, [])
        rows = delivery_rows(event_id, ev.subject, routes, ev.received_at)
        if rows:
            await conn.execute(t.deliveries.insert(), rows)
    return StoredEvent(event_id, False, [str(r["id"]) for r in rows])
