"""Ingest's group commit on Postgres, on plain asyncpg (``hub/delivery/pg_path.py`` says why).

The same batch logic as through SQLAlchemy (``store.store_with``); the events of a batch go in one
``INSERT … SELECT FROM unnest(…)`` that returns the ids it inserted, and their deliveries in one
``executemany``.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import orjson
import sqlalchemy as sa

from hub.config_cache import RouteInfo
from hub.db import tables as t
from hub.db.plain_sqlite import by_first
from hub.delivery.pg_path import PgPath, PlainPg
from hub.ingest.store import DELIVERY_COLUMNS, Key, Known, NewEvent, Planned, StoredEvent, store_with

_KNOWN = (
    "SELECT dedup_key, id, received_at FROM events WHERE source_id = $1::varchar AND dedup_key = ANY($2::varchar[])"
)
_INSERT_EVENTS = (
    "INSERT INTO events (id, source_id, connector, type, dedup_key, subject, status, headers, body, payload, "
    "received_at) SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::varchar[], $5::varchar[], "
    "$6::varchar[], $7::varchar[], $8::json[], $9::bytea[], $10::text[], $11::float8[]) "
    "ON CONFLICT (source_id, dedup_key) DO NOTHING RETURNING id"
)
_INSERT_DELIVERIES = PlainPg(t.deliveries.insert().values({c: sa.bindparam(c) for c in DELIVERY_COLUMNS}))


class _AsyncpgOps:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def known(self, keys: set[Key]) -> dict[Key, Known]:
        found: dict[Key, Known] = {}
        for source_id, dedup in by_first(keys).items():
            for key, event_id, received_at in await self._conn.fetch(_KNOWN, source_id, dedup):
                found[(source_id, key)] = Known(event_id, received_at)
        return found

    async def insert_events(self, rows: list[tuple[Planned, NewEvent]]) -> set[str]:
        columns = list(
            zip(
                *(
                    (
                        p.event_id,
                        ev.source_id,
                        ev.connector,
                        ev.type,
                        p.stored_key,
                        ev.subject,
                        ev.status,
                        orjson.dumps(ev.headers).decode(),
                        ev.body,
                        ev.payload,
                        ev.received_at,
                    )
                    for p, ev in rows
                ),
                strict=True,
            )
        )
        return {r[0] for r in await self._conn.fetch(_INSERT_EVENTS, *columns)}

    async def insert_deliveries(self, rows: list[tuple[object, ...]]) -> None:
        await self._conn.executemany(_INSERT_DELIVERIES.sql, rows)


async def store_events_pg(pg: PgPath, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]]) -> list[StoredEvent]:
    """Insert a batch of events and their deliveries in one transaction (group commit)."""
    async with pg.transaction() as conn:
        return await store_with(_AsyncpgOps(conn), batch)
