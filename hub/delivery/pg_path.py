"""The delivery engine's hot statements on Postgres, on asyncpg directly.

Through SQLAlchemy's async layer each statement cost 150-220 µs more CPU than the same one on asyncpg
(compiled-cache lookup, parameter processing, a greenlet switch, result rows), and a delivery batch runs
six to eight of them. Like ``sqlite_path.py`` on the embedded default, the writes here are the engine's
own SQLAlchemy statements (``engine._RECORD``, ``claim._CLAIMS``…) compiled once for asyncpg, so both
paths run the same SQL; the reads are three short SELECTs written for arrays (``= ANY($1)``).

The connections come from a small asyncpg pool of their own, opened at first use (ingest in scaled mode
uses it too: ``hub/ingest/pg_store.py``). A connection Postgres dropped fails the statement on it (the batch is
retried after its lease, as on SQLAlchemy's pool) and the pool replaces it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

import asyncpg
import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.engine import URL
from sqlalchemy.sql.compiler import SQLCompiler

from hub.db.plain_sqlite import by_first
from hub.delivery.breaker import BreakerState
from hub.ingest.handoff import LeasedDelivery
from hub.targets.base import ThreadAnchor

_DIALECT = asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
POOL_SIZE = 4  # a worker runs two drains: a claim, a read and a write at once at most
CONNECT_TIMEOUT = 5.0  # seconds: an unreachable Postgres fails the batch (503 on ingest) instead of hanging it


class PlainPg:
    """A SQLAlchemy Core statement compiled once for asyncpg (``$1``…, with casts), and its parameters'
    order."""

    def __init__(self, stmt: sa.ClauseElement) -> None:
        compiled = stmt.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        assert isinstance(compiled, SQLCompiler)
        self._names = tuple(compiled.positiontup or ())
        self._defaults = dict(compiled.params)

    def args(self, values: Mapping[str, object]) -> tuple[object, ...]:
        return tuple(values[n] if n in values else self._defaults[n] for n in self._names)


_LOAD = (
    "SELECT d.id, d.event_id, d.route_id, d.target_id, d.attempts, d.retry_base, d.lease_until, d.last_error, "
    "d.last_status_code, d.order_key, e.type, e.body, e.payload, e.headers, e.source_id, e.connector, e.subject, "
    "e.received_at FROM deliveries AS d JOIN events AS e ON e.id = d.event_id WHERE d.id = ANY($1::varchar[])"
)
_STATES = (
    "SELECT id, breaker_state, consecutive_failures, breaker_opened_at, breaker_until FROM targets "
    "WHERE id = ANY($1::varchar[])"
)
_ANCHORS = (
    "SELECT thread_hash, remote_id, remote_url FROM thread_anchors "
    "WHERE target_id = $1::varchar AND thread_hash = ANY($2::varchar[])"
)


def dsn_of(url: URL) -> str:
    """The libpq URL asyncpg takes, from SQLAlchemy's ``postgresql+asyncpg://`` one."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class PgPath:
    """Reads and writes of the delivery hot path on a pool of plain asyncpg connections (autocommit: each
    statement alone is atomic; ``write`` wraps its statements in one transaction)."""

    def __init__(self, dsn: str, size: int = POOL_SIZE) -> None:
        self._dsn = dsn
        self._size = size
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def _connections(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn, min_size=0, max_size=self._size, timeout=CONNECT_TIMEOUT
                    )
        return self._pool

    async def _fetch(self, sql: str, *args: object) -> list[Any]:
        pool = await self._connections()
        async with pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def load(self, ids: Sequence[str]) -> list[LeasedDelivery]:
        """Claimed deliveries with what their mapping reads of the event (the columns of ``engine._LOAD``)."""
        rows = await self._fetch(_LOAD, list(ids))
        return [LeasedDelivery._make((*r[:13], orjson.loads(r[13]), *r[14:])) for r in rows]

    async def states(self, target_ids: Iterable[str]) -> dict[str, BreakerState]:
        return {r[0]: BreakerState(*r[1:]) for r in await self._fetch(_STATES, sorted(target_ids))}

    async def anchors(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ThreadAnchor]:
        out: dict[tuple[str, str], ThreadAnchor] = {}
        for target_id, threads in by_first(set(keys)).items():
            for thread, remote_id, remote_url in await self._fetch(_ANCHORS, target_id, threads):
                out[(target_id, thread)] = ThreadAnchor(remote_id, remote_url)
        return out

    async def claim(self, statements: Sequence[PlainPg], params: dict[str, object], limit: int) -> list[str]:
        """Claim statements (``RETURNING id``) run in turn, each atomic alone, until ``limit`` ids."""
        ids: list[str] = []
        pool = await self._connections()
        async with pool.acquire() as conn:
            for stmt in statements:
                if len(ids) >= limit:
                    break
                rows = await conn.fetch(stmt.sql, *stmt.args({**params, "limit": limit - len(ids)}))
                ids += [r[0] for r in rows]
        return ids

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction: committed when the block ends, rolled back on an error."""
        pool = await self._connections()
        async with pool.acquire() as conn, conn.transaction():
            yield conn

    async def write(self, steps: Sequence[tuple[PlainPg, Sequence[Mapping[str, object]]]]) -> None:
        """Run these statements (each with its rows of parameters) in one transaction."""
        todo = [(stmt.sql, [stmt.args(p) for p in rows]) for stmt, rows in steps if rows]
        if todo:
            async with self.transaction() as conn:
                for sql, rows in todo:
                    await conn.executemany(sql, rows)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
