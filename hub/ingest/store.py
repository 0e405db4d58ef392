"""Commit an event and its deliveries in one transaction: a core insert, no ORM graph."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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


def _event_values(event_id: str, ev: NewEvent) -> dict[str, object]:
    return {
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


async def _stored_ids(conn: AsyncConnection, keys: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Which (source, dedup key) pairs are stored: per source, through the unique index."""
    e = t.events
    by_source: dict[str, list[str]] = {}
    for source_id, dedup_key in keys:
        by_source.setdefault(source_id, []).append(dedup_key)
    found: dict[tuple[str, str], str] = {}
    for source_id, dedup in by_source.items():
        stmt = sa.select(e.c.dedup_key, e.c.id).where(e.c.source_id == source_id, e.c.dedup_key.in_(dedup))
        found.update({(source_id, r.dedup_key): r.id for r in await conn.execute(stmt)})
    return found


async def store_events(engine: AsyncEngine, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]]) -> list[StoredEvent]:
    """Insert a batch of events and their deliveries in one transaction (group commit).

    An event whose (source, dedup key) is already stored — earlier, by another process at the same
    moment, or earlier in this batch — is not inserted: its result names the first event's id.
    """
    e = t.events
    ids = [new_id("evt") for _ in batch]
    first_in_batch: dict[tuple[str, str], int] = {}
    for i, (ev, _) in enumerate(batch):
        if ev.dedup_key is not None:
            first_in_batch.setdefault((ev.source_id, ev.dedup_key), i)
    candidates = [
        i
        for i, (ev, _) in enumerate(batch)
        if ev.dedup_key is None or first_in_batch[(ev.source_id, ev.dedup_key)] == i
    ]
    async with engine.begin() as conn:
        stored_ids = await _stored_ids(conn, set(first_in_batch))
        to_insert = [
            i
            for i in candidates
            if batch[i][0].dedup_key is None or (batch[i][0].source_id, batch[i][0].dedup_key) not in stored_ids
        ]
        inserted: set[str] = set()
        if to_insert:
            stmt = insert_ignoring_conflicts(e, engine.dialect.name, "source_id", "dedup_key").returning(e.c.id)
            rows = await conn.execute(stmt, [_event_values(ids[i], batch[i][0]) for i in to_insert])
            inserted = {r[0] for r in rows}
        lost_race = [i for i in to_insert if ids[i] not in inserted]  # another process stored it just now
        if lost_race:
            race = {(batch[i][0].source_id, batch[i][0].dedup_key or "") for i in lost_race}
            stored_ids.update(await _stored_ids(conn, race))
        deliveries: dict[int, list[dict[str, object]]] = {}
        for i in to_insert:
            if ids[i] in inserted:
                ev, routes = batch[i]
                deliveries[i] = delivery_rows(ids[i], ev.subject, routes, ev.received_at)
        all_rows = [row for rows_ in deliveries.values() for row in rows_]
        if all_rows:
            await conn.execute(t.deliveries.insert(), all_rows)
    results: list[StoredEvent] = []
    for i, (ev, _) in enumerate(batch):
        if ids[i] in inserted:
            results.append(StoredEvent(ids[i], False, [str(r["id"]) for r in deliveries.get(i, [])]))
        else:
            key = (ev.source_id, ev.dedup_key or "")
            first = stored_ids.get(key) or ids[first_in_batch[key]]
            results.append(StoredEvent(first, True, []))
    return results
