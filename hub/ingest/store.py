"""Commit an event and its deliveries in one transaction: a core insert, no ORM graph."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.config_cache import RouteInfo
from hub.connectors.parse import dedup_key
from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.db.plain_sqlite import by_first
from hub.ids import new_id
from hub.ingest.handoff import LeasedDelivery


@dataclass(frozen=True)
class StoredEvent:
    event_id: str
    duplicate: bool
    delivery_ids: list[str]
    handed: tuple[LeasedDelivery, ...] = ()  # of those, the ones inserted leased for the worker (handoff.py)


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
    payload: str | None = None  # JSON text of the event's own payload; None: the body is the payload
    dedup_window: float | None = None  # the dedup key counts only within these seconds


Key = tuple[str, str]  # (source id, stored dedup key)


@dataclass(frozen=True)
class Known:
    event_id: str
    received_at: float


def window_key(ev: NewEvent, buckets_back: int = 0) -> str | None:
    """The dedup key as stored. In a window of W seconds the key carries its W-long time bucket: at most
    one event per bucket can be stored (a second one in the same bucket is less than W later), so the
    unique index still settles races, and only the bucket before needs a look at its time."""
    if ev.dedup_key is None or ev.dedup_window is None:
        return ev.dedup_key
    bucket = int(ev.received_at // ev.dedup_window) - buckets_back
    return dedup_key(f"{ev.dedup_key}@{ev.dedup_window:g}/{bucket}")


def keys_to_look_up(events: Sequence[NewEvent]) -> set[Key]:
    keys: set[Key] = set()
    for ev in events:
        for back in (0, 1) if ev.dedup_window is not None else (0,):
            key = window_key(ev, back)
            if key is not None:
                keys.add((ev.source_id, key))
    return keys


@dataclass(frozen=True)
class Planned:
    event_id: str
    duplicate: bool
    stored_key: str | None = None


def plan_batch(events: Sequence[NewEvent], known: dict[Key, Known]) -> list[Planned]:
    """Which events of a batch are new (in order, so a repeat within the batch is a duplicate too).
    ``known`` holds what the database has for ``keys_to_look_up``; it is updated in place."""
    plans: list[Planned] = []
    for ev in events:
        key = window_key(ev)
        if key is None:
            plans.append(Planned(new_id("evt"), False))
            continue
        found = known.get((ev.source_id, key))
        if found is None and ev.dedup_window is not None:
            before = known.get((ev.source_id, window_key(ev, 1) or ""))
            if before is not None and before.received_at > ev.received_at - ev.dedup_window:
                found = before
        if found is not None:
            plans.append(Planned(found.event_id, True))
            continue
        event_id = new_id("evt")
        known[(ev.source_id, key)] = Known(event_id, ev.received_at)
        plans.append(Planned(event_id, False, key))
    return plans


DELIVERY_COLUMNS = (
    "id",
    "event_id",
    "route_id",
    "target_id",
    "order_key",
    "status",
    "attempts",
    "next_attempt_at",
    "lease_until",
    "last_error",
    "last_status_code",
    "created_at",
    "updated_at",
    "delivered_at",
)


def delivery_values(event_id: str, subject: str | None, route: RouteInfo, now: float) -> tuple[object, ...]:
    """A new pending delivery of an event on a route, as the values of ``DELIVERY_COLUMNS``."""
    did = new_id("dlv")
    return (
        did,
        event_id,
        route.id,
        route.target_id,
        route.order_key(subject, did),
        "pending",
        0,
        route.first_due(now),
        None,
        None,
        None,
        now,
        now,
        None,
    )


def delivery_rows(
    event_id: str, subject: str | None, routes: Sequence[RouteInfo], now: float
) -> list[dict[str, object]]:
    return [dict(zip(DELIVERY_COLUMNS, delivery_values(event_id, subject, r, now), strict=True)) for r in routes]


EVENT_COLUMNS = (
    "id",
    "source_id",
    "connector",
    "type",
    "dedup_key",
    "subject",
    "status",
    "headers",
    "body",
    "payload",
    "received_at",
)


def event_values(plan: Planned, ev: NewEvent) -> tuple[object, ...]:
    """A new event as the values of ``EVENT_COLUMNS``, its headers as JSON text (for the plain drivers)."""
    return (
        plan.event_id,
        ev.source_id,
        ev.connector,
        ev.type,
        plan.stored_key,
        ev.subject,
        ev.status,
        orjson.dumps(ev.headers).decode(),
        ev.body,
        ev.payload,
        ev.received_at,
    )


def _event_values(plan: Planned, ev: NewEvent) -> dict[str, object]:
    """The same row for SQLAlchemy, whose JSON column type encodes the headers itself."""
    return {**dict(zip(EVENT_COLUMNS, event_values(plan, ev), strict=True)), "headers": ev.headers}


_e = t.events
# built once: a new statement object per batch costs SQLAlchemy its cache key every time
_KNOWN = sa.select(_e.c.dedup_key, _e.c.id, _e.c.received_at).where(
    _e.c.source_id == sa.bindparam("source_id"), _e.c.dedup_key.in_(sa.bindparam("keys", expanding=True))
)


_INSERT_DELIVERIES = t.deliveries.insert()


@functools.cache
def _insert_events(dialect: str) -> Any:
    return insert_ignoring_conflicts(_e, dialect, "source_id", "dedup_key").returning(_e.c.id)


class StoreOps(Protocol):
    """The three statements of a batch, inside the transaction the caller opened."""

    async def known(self, keys: set[Key]) -> dict[Key, Known]:
        """What is stored under these (source, dedup key) pairs."""
        ...

    async def insert_events(self, rows: list[tuple[Planned, NewEvent]]) -> set[str]:
        """Insert, skipping a (source, dedup key) already stored; the ids inserted."""
        ...

    async def insert_deliveries(self, rows: list[tuple[object, ...]]) -> None:
        """Rows of ``DELIVERY_COLUMNS``."""
        ...


class _SqlAlchemyOps:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def known(self, keys: set[Key]) -> dict[Key, Known]:
        """Per source, through the unique index."""
        found: dict[Key, Known] = {}
        for source_id, dedup in by_first(keys).items():
            rows = await self._conn.execute(_KNOWN, {"source_id": source_id, "keys": dedup})
            found.update({(source_id, r.dedup_key): Known(r.id, r.received_at) for r in rows})
        return found

    async def insert_events(self, rows: list[tuple[Planned, NewEvent]]) -> set[str]:
        stmt = _insert_events(self._conn.dialect.name)
        return {r[0] for r in await self._conn.execute(stmt, [_event_values(p, ev) for p, ev in rows])}

    async def insert_deliveries(self, rows: list[tuple[object, ...]]) -> None:
        await self._conn.execute(_INSERT_DELIVERIES, [dict(zip(DELIVERY_COLUMNS, r, strict=True)) for r in rows])


async def store_events(engine: AsyncEngine, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]]) -> list[StoredEvent]:
    """Insert a batch of events and their deliveries in one transaction (group commit), through
    SQLAlchemy (Postgres in scaled mode uses ``pg_store.py``, the embedded default ``sqlite_writer.py``)."""
    async with engine.begin() as conn:
        return await store_with(_SqlAlchemyOps(conn), batch)


async def store_with(ops: StoreOps, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]]) -> list[StoredEvent]:
    """The events of a batch and their deliveries, inside the caller's transaction.

    An event whose (source, dedup key) is already stored — earlier, by another process at the same
    moment, or earlier in this batch — is not inserted: its result names the first event's id (found
    after the insert met the unique index, for a key without a window).
    """
    events = [ev for ev, _ in batch]
    # Only keys with a window are looked up first (the window's previous bucket holds another key). An
    # exact key already stored shows as a conflict of the insert below, then is looked up: a repeat is
    # rare, and a lookup of every key was a round trip per batch.
    windowed = [ev for ev in events if ev.dedup_window is not None]
    plans = plan_batch(events, await ops.known(keys_to_look_up(windowed)) if windowed else {})
    fresh = [i for i, p in enumerate(plans) if not p.duplicate]
    inserted = await ops.insert_events([(plans[i], events[i]) for i in fresh]) if fresh else set()
    lost = [i for i in fresh if plans[i].event_id not in inserted]  # another process stored it just now
    if lost:
        race = await ops.known({(events[i].source_id, plans[i].stored_key or "") for i in lost})
        for i in lost:
            first = race.get((events[i].source_id, plans[i].stored_key or ""))
            plans[i] = Planned(first.event_id if first else plans[i].event_id, True)
    deliveries: dict[int, list[tuple[object, ...]]] = {}
    for i in fresh:
        if plans[i].event_id in inserted:
            ev, routes = batch[i]
            deliveries[i] = [delivery_values(plans[i].event_id, ev.subject, r, ev.received_at) for r in routes]
    all_rows = [row for rows_ in deliveries.values() for row in rows_]
    if all_rows:
        await ops.insert_deliveries(all_rows)
    return [
        StoredEvent(p.event_id, p.duplicate, [str(r[0]) for r in deliveries.get(i, [])]) for i, p in enumerate(plans)
    ]
