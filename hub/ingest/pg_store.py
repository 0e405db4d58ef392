"""Ingest's group commit on Postgres, on plain asyncpg (``hub/delivery/pg_path.py`` says why).

The same batch logic as through SQLAlchemy (``store.store_with``); the events of a batch go in one
``INSERT … SELECT FROM unnest(…)`` that returns the ids it inserted, and their deliveries in one
``executemany``.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import sqlalchemy as sa

from hub.config_cache import RouteInfo
from hub.db import tables as t
from hub.db.plain_sqlite import by_first
from hub.delivery.pg_path import PgPath, PlainPg
from hub.ingest.store import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    Key,
    Known,
    NewEvent,
    Planned,
    StoredEvent,
    event_values,
    store_with,
)

_KNOWN = (
    "SELECT dedup_key, id, received_at FROM events WHERE source_id = $1::varchar AND dedup_key = ANY($2::varchar[])"
)
_TYPES = (
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "varchar",
    "json",
    "bytea",
    "text",
    "float8",
)
_INSERT_EVENTS = (
    f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
    f"SELECT * FROM unnest({', '.join(f'${i}::{ty}[]' for i, ty in enumerate(_TYPES, 1))}) "
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
        columns = list(zip(*(event_values(p, ev) for p, ev in rows), strict=True))  # one array per column
        return {r[0] for r in await self._conn.fetch(_INSERT_EVENTS, *columns)}

    async def insert_deliveries(self, rows: list[tuple[object, ...]]) -> None:
        await self._conn.executemany(_INSERT_DELIVERIES.sql, rows)


async def store_events_pg(pg: PgPath, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]]) -> list[StoredEvent]:
    """Insert a batch of events and their deliveries in one transaction (group commit)."""
    async with pg.transaction() as conn:
        return await store_with(_AsyncpgOps(conn), batch)
