"""Fetched changes as events (one per changed item) and their deliveries, written in the caller's
transaction — the one that advances the feed's cursor (:func:`hub.storage.cursors.advance`).

Each event's dedup key is the item's id and version (its revision, eTag or the change's time): were a page
read twice, its events would be stored once. Its subject is the item's id, so posts about one file share a
thread and reach the RSE in order.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.config_cache import RouteInfo
from hub.connectors.parse import dedup_key, storable
from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.ids import new_id
from hub.ingest.store import delivery_rows
from hub.storage.model import Change, change_payload


@dataclass(frozen=True)
class FetchedEvent:
    type: str
    subject: str
    dedup_key: str
    payload: dict[str, Any]


def fetched_event(connector: str, account: str, change: Change, via: dict[str, Any]) -> FetchedEvent:
    identity = f"fetch:{connector}:{account}:{change.item.id}@{change.version}"
    return FetchedEvent(
        change.event_type,
        storable(change.item.id, 300),
        dedup_key(identity),
        change_payload(change, account, via),
    )


async def store_fetched(
    conn: AsyncConnection,
    dialect: str,
    source_id: str,
    connector: str,
    events: Sequence[FetchedEvent],
    routes: Mapping[str, Sequence[RouteInfo]],
    now: float,
) -> tuple[int, list[str]]:
    """Insert the events not already stored (same dedup key) and the deliveries of those; returns how many
    events were new and the delivery ids."""
    if not events:
        return 0, []
    e = t.events
    rows: list[dict[str, Any]] = []
    for ev in events:
        matched = routes.get(ev.type, ())
        rows.append(
            {
                "id": new_id("evt"),
                "source_id": source_id,
                "connector": connector,
                "type": storable(ev.type, 200),
                "dedup_key": ev.dedup_key,
                "subject": ev.subject,
                "status": "routed" if matched else "unrouted",
                "headers": {},
                "body": b"",
                "payload": json.dumps(ev.payload, ensure_ascii=False, separators=(",", ":")),
                "received_at": now,
            }
        )
    stmt = insert_ignoring_conflicts(e, dialect, "source_id", "dedup_key").returning(e.c.id)
    inserted = {r[0] for r in await conn.execute(stmt, rows)}
    deliveries: list[dict[str, object]] = []
    for row, ev in zip(rows, events, strict=True):
        if row["id"] in inserted:
            deliveries += delivery_rows(str(row["id"]), ev.subject, routes.get(ev.type, ()), now)
    if deliveries:
        await conn.execute(t.deliveries.insert(), deliveries)
    return len(inserted), [str(d["id"]) for d in deliveries]


async def forget(conn: AsyncConnection, source_id: str) -> None:
    """Nothing of a deleted source's storage state stays (its events follow hub's retention)."""
    for table in (t.storage_cursors, t.storage_subscriptions, t.source_credentials):
        await conn.execute(sa.delete(table).where(table.c.source_id == source_id))
