"""Claiming due deliveries atomically, so two workers never send the same one.

A delivery is claimable when it is pending and due, or when a worker's lease on it ran out (that
worker died). Per (target, order key) only the oldest unfinished delivery is claimable, and none while
another one of its thread is being sent (a retried dead letter is older than what is in flight), so
posts of one business object reach the RSE in order, one at a time.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.db import tables as t
from hub.delivery.pg_path import PgPath, PlainPg
from hub.delivery.sqlite_path import Plain, SqlitePath

UNFINISHED = ("pending", "sending")

_d = t.deliveries
_p = t.deliveries.alias("earlier")


_NOW = sa.bindparam("now", type_=sa.Float)


def _nothing_ahead() -> sa.ColumnElement[bool]:
    """No earlier unfinished delivery of the thread, and none of it being sent under a live lease (a send
    whose lease ran out no longer holds its thread: its worker died)."""
    return ~sa.exists().where(
        _p.c.target_id == _d.c.target_id,
        _p.c.order_key == _d.c.order_key,
        _p.c.id != _d.c.id,
        # literals, not bound parameters: SQLite uses the partial index only when it can see them
        _p.c.status.in_([sa.literal_column(f"'{s}'") for s in UNFINISHED]),
        sa.or_(_p.c.id < _d.c.id, sa.and_(_p.c.status == sa.literal_column("'sending'"), _p.c.lease_until >= _NOW)),
    )


def _claim(candidates: sa.Select[tuple[str]], pg: bool) -> sa.Update:
    candidates = candidates.where(_nothing_ahead()).limit(sa.bindparam("limit", type_=sa.Integer))
    if pg:
        candidates = candidates.with_for_update(skip_locked=True)
    return (
        sa.update(_d)
        .where(_d.c.id.in_(candidates.scalar_subquery()))
        .values(status="sending", lease_until=sa.bindparam("lease_until", type_=sa.Float), updated_at=_NOW)
        .returning(_d.c.id)
    )


_PENDING = (
    sa.select(_d.c.id).where(_d.c.status == "pending", _d.c.next_attempt_at <= _NOW).order_by(_d.c.next_attempt_at)
)
_EXPIRED = sa.select(_d.c.id).where(_d.c.status == "sending", _d.c.lease_until < _NOW)
# built once per dialect: a new statement object per claim costs its cache key every time
_CLAIMS = {pg: (_claim(_PENDING, pg), _claim(_EXPIRED, pg)) for pg in (False, True)}


_CLAIMS_SQLITE = tuple(Plain(s) for s in _CLAIMS[False])
_CLAIMS_PG = tuple(PlainPg(s) for s in _CLAIMS[True])


async def claim_due(
    engine: AsyncEngine,
    limit: int,
    lease_until: float,
    now: float,
    sqlite: SqlitePath | None = None,
    pg: PgPath | None = None,
) -> list[str]:
    """Mark up to ``limit`` due deliveries as ``sending`` with our lease; return their ids.

    Two index range scans, never a table scan: pending ones by (status, next_attempt_at), then
    deliveries whose lease ran out (a worker died) by status. On the embedded default, on its one
    writer thread (``sqlite``); on Postgres, on plain asyncpg when given ``pg``. Each of the two
    statements claims atomically on its own: ``engine`` may run them without a transaction around them
    (``Runtime.autocommit``).
    """
    params: dict[str, object] = {"now": now, "lease_until": lease_until, "limit": limit}
    if sqlite is not None:
        return await sqlite.claim(_CLAIMS_SQLITE, params, limit)
    if pg is not None:
        return await pg.claim(_CLAIMS_PG, params, limit)
    pending, expired = _CLAIMS[engine.dialect.name == "postgresql"]
    async with engine.begin() as conn:
        ids = [r[0] for r in await conn.execute(pending, params)]
        if len(ids) < limit:
            params["limit"] = limit - len(ids)
            ids += [r[0] for r in await conn.execute(expired, params)]
    return ids


async def next_due_at(conn: AsyncConnection) -> float | None:
    """When the earliest pending delivery or lease falls due."""
    pending = await conn.scalar(sa.select(sa.func.min(_d.c.next_attempt_at)).where(_d.c.status == "pending"))
    leased = await conn.scalar(sa.select(sa.func.min(_d.c.lease_until)).where(_d.c.status == "sending"))
    times = [x for x in (pending, leased) if x is not None]
    return min(times) if times else None
