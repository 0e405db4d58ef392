"""Group commit on the embedded default: one sqlite3 connection in one thread writes ingest batches,
and the delivery engine's claims and outcomes between them (``call``; hub/delivery/sqlite_path.py).

Cheaper than going through the async ORM layer statement by statement: a batch is one BEGIN IMMEDIATE,
a SELECT for known dedup keys (and, when it hands deliveries to the worker, one for their threads), two
multi-row INSERTs and one COMMIT (one fsync). BEGIN IMMEDIATE takes the write lock first, so the dedup
check and the insert are atomic against any other writer.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hub.config_cache import RouteInfo
from hub.db.plain_sqlite import IN_CHUNK, by_first, immediate, marks, select_in, writer_connection
from hub.ingest.handoff import LEASE_UNTIL, Lease, LeasedDelivery, ThreadKey, lease_rows, thread_keys
from hub.ingest.store import (
    DELIVERY_COLUMNS,
    EVENT_COLUMNS,
    Key,
    Known,
    NewEvent,
    StoredEvent,
    delivery_values,
    event_values,
    keys_to_look_up,
    plan_batch,
)

_T = TypeVar("_T")


def _insert_rows(
    conn: sqlite3.Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[object, ...]]
) -> None:
    """Multi-row INSERTs: one statement step per chunk instead of one per row (executemany steps once a
    row, and gives up and takes back the GIL each time: the event loop thread pays for that)."""
    per = max(1, min(IN_CHUNK, 999 // len(columns)))
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    one = f"({marks(len(columns))})"
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        conn.execute(head + ", ".join([one] * len(part)), [value for row in part for value in row])


_KNOWN = "SELECT dedup_key, id, received_at FROM events WHERE source_id = ? AND dedup_key IN ({})"
_BUSY = (  # through the partial index of unfinished deliveries
    "SELECT DISTINCT order_key FROM deliveries WHERE target_id = ? AND order_key IN ({}) "
    "AND status IN ('pending', 'sending')"
)


def _known(conn: sqlite3.Connection, keys: set[Key]) -> dict[Key, Known]:
    """What is stored under these (source, dedup key) pairs: per source, through the unique index."""
    return {
        (source_id, dedup_key): Known(event_id, received_at)
        for source_id, dedup in by_first(keys).items()
        for dedup_key, event_id, received_at in select_in(conn.execute, _KNOWN, dedup, [source_id])
    }


def _busy(conn: sqlite3.Connection, keys: set[ThreadKey]) -> set[ThreadKey]:
    """Of these threads, those with an unfinished delivery stored."""
    return {
        (target_id, str(order_key))
        for target_id, order_keys in by_first(keys).items()
        for (order_key,) in select_in(conn.execute, _BUSY, order_keys, [target_id])
    }


def _handed(row: tuple[object, ...], event_id: str, ev: NewEvent) -> LeasedDelivery:
    return LeasedDelivery(
        str(row[0]), event_id, str(row[2]), str(row[3]), 0, 0, float(row[LEASE_UNTIL]),  # type: ignore[arg-type]
        None, None, str(row[4]), ev.type, ev.body, ev.payload, ev.headers, ev.source_id, ev.connector,
        ev.subject, ev.received_at,
    )  # fmt: skip


def write_batch(
    conn: sqlite3.Connection, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None = None
) -> list[StoredEvent]:
    """Store a batch in one transaction; repeats of a stored (or earlier in the batch) dedup key are not.
    With a ``lease``, the deliveries that can be sent at once are inserted leased (hub/ingest/handoff.py)."""
    events: list[tuple[object, ...]] = []
    deliveries: list[tuple[object, ...]] = []
    owners: list[int] = []  # per delivery row, the position of its event in the batch
    with immediate(conn):
        new_events = [ev for ev, _ in batch]
        plans = plan_batch(new_events, _known(conn, keys_to_look_up(new_events)))
        for i, ((ev, routes), plan) in enumerate(zip(batch, plans, strict=True)):
            if plan.duplicate:
                continue
            events.append(event_values(plan, ev))
            for route in routes:
                deliveries.append(delivery_values(plan.event_id, ev.subject, route, ev.received_at))
                owners.append(i)
        leased = lease_rows(deliveries, _busy(conn, thread_keys(deliveries)), lease) if lease and deliveries else []
        _insert_rows(conn, "events", EVENT_COLUMNS, events)
        _insert_rows(conn, "deliveries", DELIVERY_COLUMNS, deliveries)
    ids: list[list[str]] = [[] for _ in batch]
    handed: list[list[LeasedDelivery]] = [[] for _ in batch]
    for row, i in zip(deliveries, owners, strict=True):
        ids[i].append(str(row[0]))
    for j in leased:
        i = owners[j]
        handed[i].append(_handed(deliveries[j], plans[i].event_id, batch[i][0]))
    return [StoredEvent(p.event_id, p.duplicate, ids[i], tuple(handed[i])) for i, p in enumerate(plans)]


class SqliteIngestWriter:
    """Owns the connection and the one thread that uses it: the embedded default's one writer."""

    def __init__(self, path: str) -> None:
        self._path = path
        self.synchronous = "FULL"  # the delivery process, which stores no webhook, sets NORMAL before first use
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hub-ingest-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = writer_connection(self._path, self.synchronous)
        return self._conn

    async def call(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(connection, *args)`` on the writer's thread, between ingest batches (hub/delivery/sqlite_path.py)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, fn, args)

    def _run(self, fn: Callable[..., _T], args: tuple[Any, ...]) -> _T:
        return fn(self._connection(), *args)

    def _write(self, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None) -> list[StoredEvent]:
        return write_batch(self._connection(), batch, lease)

    async def store_events(
        self, batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None = None
    ) -> list[StoredEvent]:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._write, batch, lease)

    def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        self._executor.submit(_close).result()
        self._executor.shutdown(wait=True)
