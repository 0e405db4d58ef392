"""Retention: events older than ``HUB_RETENTION_DAYS`` whose deliveries all succeeded go, with their
deliveries and attempts, so the database does not grow for ever.

Never purged: an event with a delivery still pending or sending (acknowledged work), or one that is
dead or failed (a dead letter stays until someone retries it). Posts in the inbox are kept.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.db import tables as t
from hub.runtime import Runtime

log = logging.getLogger("hub.retention")
KEPT = ("pending", "sending", "dead", "failed")
BATCH = 500
INTERVAL = 3600.0
FIRST_RUN_AFTER = 60.0


def cutoff_id(cutoff: float) -> str:
    """Event ids are time-ordered (``hub.ids``): every id below this one was made before ``cutoff``."""
    return f"evt_{int(cutoff * 1e9):016x}"


async def purge_expired(engine: AsyncEngine, retention_seconds: float, now: float, batch: int = BATCH) -> int:
    """Delete expired, finished events in batches (one short transaction each); how many went."""
    e, d, a = t.events, t.deliveries, t.attempts
    kept = sa.exists().where(d.c.event_id == e.c.id, d.c.status.in_(KEPT))
    below, after, purged = cutoff_id(now - retention_seconds), "", 0
    while True:
        async with engine.begin() as conn:
            scanned = [
                (r.id, r.keep)
                for r in await conn.execute(
                    sa.select(e.c.id, kept.label("keep"))
                    .where(e.c.id > after, e.c.id < below)
                    .order_by(e.c.id)
                    .limit(batch)
                )
            ]
            ids = [event_id for event_id, keep in scanned if not keep]
            if ids:  # lock the events, then check again in a new statement (a fresh snapshot on Postgres): a
                # replay that got there first keeps its event; one that comes after finds it gone
                if engine.dialect.name == "postgresql":
                    await conn.execute(sa.select(e.c.id).where(e.c.id.in_(ids)).with_for_update())
                gone = [r[0] for r in await conn.execute(sa.delete(e).where(e.c.id.in_(ids), ~kept).returning(e.c.id))]
                if gone:
                    deliveries = sa.select(d.c.id).where(d.c.event_id.in_(gone)).scalar_subquery()
                    await conn.execute(sa.delete(a).where(a.c.delivery_id.in_(deliveries)))
                    await conn.execute(sa.delete(d).where(d.c.event_id.in_(gone)))
                ids = gone
        purged += len(ids)
        if len(scanned) < batch:
            return purged
        after = scanned[-1][0]
        await asyncio.sleep(0)  # let ingest and deliveries in between two batches


async def run_retention(rt: Runtime) -> None:
    """Purge once an hour (first a minute after start, jittered so workers do not all go at once)."""
    days = rt.settings.retention_days
    if not days:
        return
    await asyncio.sleep(FIRST_RUN_AFTER * random.uniform(1.0, 2.0))
    while True:
        try:
            purged = await purge_expired(rt.engine, days * 86400.0, time.time())
            if purged:
                rt.metrics.events_purged.inc(purged)
                log.info("expired events purged", extra={"count": purged, "retention_days": days})
        except Exception as exc:
            log.warning("retention purge failed", extra={"cause": f"{type(exc).__name__}: {exc}"})
        await asyncio.sleep(INTERVAL * random.uniform(0.9, 1.1))
