"""The delivery engine's hot statements on the embedded default, on plain sqlite3.

Every write goes through the one writer thread that also commits ingest batches (``SqliteIngestWriter``):
SQLite has one write lock, and two connections taking turns at it wait in its busy handler (sleeps of
milliseconds each), which made commits and outcomes 10 to 60 ms late under load. Reads (a claimed batch,
breaker states, thread anchors) run on the caller's thread on a connection of their own: in WAL mode a
reader never waits for the writer, and a few indexed rows cost less than a hop to a thread.

The writes are the engine's own SQLAlchemy statements (``engine._RECORD``, ``claim._CLAIMS``…) compiled
once for SQLite, so both paths run the same SQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from hub.db.plain_sqlite import by_first, immediate, select_in
from hub.delivery.breaker import BreakerState
from hub.ingest.handoff import LeasedDelivery
from hub.ingest.sqlite_writer import SqliteIngestWriter
from hub.targets.base import ThreadAnchor

_DIALECT = sqlite.dialect(paramstyle="named")


class Plain:
    """A SQLAlchemy Core statement compiled once for sqlite3, with named parameters."""

    def __init__(self, stmt: sa.ClauseElement) -> None:
        compiled = stmt.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self._defaults = dict(compiled.params)

    def params(self, values: Mapping[str, object]) -> dict[str, object]:
        return {**self._defaults, **values}


_LOAD = (
    "SELECT d.id, d.event_id, d.route_id, d.target_id, d.attempts, d.retry_base, d.lease_until, d.last_error, "
    "d.last_status_code, d.order_key, e.type, e.body, e.payload, e.headers, e.source_id, e.connector, e.subject, "
    "e.received_at FROM deliveries AS d JOIN events AS e ON e.id = d.event_id WHERE d.id IN ({})"
)
_STATES = (
    "SELECT id, breaker_state, consecutive_failures, breaker_opened_at, breaker_until FROM targets WHERE id IN ({})"
)
_ANCHORS = "SELECT thread_hash, remote_id, remote_url FROM thread_anchors WHERE target_id = ? AND thread_hash IN ({})"


class SqlitePath:
    """Reads on a connection of the caller's thread; writes on the ingest writer's thread."""

    def __init__(self, writer: SqliteIngestWriter, path: str) -> None:
        self.writer = writer
        self._path = path
        self._reader: sqlite3.Connection | None = None

    def _read(self, sql: str, params: Sequence[object]) -> list[Any]:
        if self._reader is None:
            self._reader = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            self._reader.execute("PRAGMA busy_timeout=1000")
        return self._reader.execute(sql, params).fetchall()

    def load(self, ids: Sequence[str]) -> list[LeasedDelivery]:
        """Claimed deliveries with what their mapping reads of the event (the columns of ``engine._LOAD``)."""
        return [
            LeasedDelivery._make((*r[:13], orjson.loads(r[13]), *r[14:])) for r in select_in(self._read, _LOAD, ids)
        ]

    def states(self, target_ids: Iterable[str]) -> dict[str, BreakerState]:
        return {r[0]: BreakerState(*r[1:]) for r in select_in(self._read, _STATES, list(target_ids))}

    def anchors(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ThreadAnchor]:
        return {
            (target_id, thread): ThreadAnchor(remote_id, remote_url)
            for target_id, threads in by_first(set(keys)).items()
            for thread, remote_id, remote_url in select_in(self._read, _ANCHORS, threads, [target_id])
        }

    async def write(self, steps: Sequence[tuple[Plain, Sequence[Mapping[str, object]]]]) -> None:
        """Run these statements (each with its rows of parameters) in one transaction on the writer."""
        todo = [(plain.sql, [plain.params(p) for p in rows]) for plain, rows in steps if rows]
        if todo:
            await self.writer.call(_write_steps, todo)

    async def claim(self, statements: Sequence[Plain], params: dict[str, object], limit: int) -> list[str]:
        """Claim statements (``RETURNING id``) run in turn in one transaction until ``limit`` ids."""
        return await self.writer.call(_claim_steps, [(s.sql, s.params({})) for s in statements], params, limit)

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _write_steps(conn: sqlite3.Connection, steps: list[tuple[str, list[dict[str, object]]]]) -> None:
    with immediate(conn):
        for sql, rows in steps:
            conn.executemany(sql, rows)


def _claim_steps(
    conn: sqlite3.Connection, statements: list[tuple[str, dict[str, object]]], params: dict[str, object], limit: int
) -> list[str]:
    ids: list[str] = []
    with immediate(conn):
        for sql, defaults in statements:
            if len(ids) >= limit:
                break
            ids += [r[0] for r in conn.execute(sql, {**defaults, **params, "limit": limit - len(ids)})]
    return ids
