"""Claiming due deliveries atomically, so two workers never send the same one.

A delivery is claimable when it is pending and due, or when a worker's lease on it ran out (that
worker died). Per (target, order key) only the oldest unfinished delivery is claimable, so posts of
one business object reach the RSE in order.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.db import tables as t

UNFINISHED = ("pending", "sending")
TERMINAL = ("delivered", "dead", "failed", "skipped")

_d = t.deliveries
_p = t.deliveries.alias("earlier")


def _due_ids(now: float, limit: int, skip_locked: bool) -> sa.Select[tuple[str]]:
    earlier_unfinished = sa.exists().where(
        _p.c.target_id == _d.c.target_id,
        _p.c.order_key == _d.c.order_key,
        _p.c.id < _d.c.id,
        _p.c.status.in_(UNFINISHED),
    )
    due = sa.or_(
        sa.and_(_d.c.status == "pending", _d.c.next_attempt_at <= now),
        sa.and_(_d.c.status == "sending", _d.c.lease_until < now),
    )
    stmt = sa.select(_d.c.id).where(due, ~earlier_unfinished).order_by(_d.c.next_attempt_at).limit(limit)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


async def claim_due(engine: AsyncEngine, limit: int, lease_until: float, now: float) -> list[str]:
    """Mark up to ``limit`` due deliveries as ``sending`` with our lease; return their ids."""
    pg = engine.dialect.name == "postgresql"
    stmt = (
        sa.update(_d)
        .where(_d.c.id.in_(_due_ids(now, limit, skip_locked=pg).scalar_subquery()))
        .values(status="sending", lease_until=lease_until, updated_at=now)
        .returning(_d.c.id)
    )
    async with engine.begin() as conn:
        return [r[0] for r in await conn.execute(stmt)]


async def next_due_at(conn: AsyncConnection) -> float | None:
    """When the earliest pending delivery or lease falls due."""
    pending = await conn.scalar(sa.select(sa.func.min(_d.c.next_attempt_at)).where(_d.c.status == "pending"))
    leased = await conn.scalar(sa.select(sa.func.min(_d.c.lease_until)).where(_d.c.status == "sending"))
    times = [x for x in (pending, leased) if x is not None]
    return min(times) if times else None
