"""Thread anchors: the remote post that opened a business object's thread on a target.

Read once per claimed batch (one query), written in the transaction that records the deliveries'
outcomes. Posts of one thread are claimed one at a time, oldest first (see claim.py), so a later post is
only sent once the first one's outcome, and its anchor, are committed. Two posts whose different
subjects map to one custom thread key may race: the first anchor written wins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.delivery.pg_path import PlainPg
from hub.delivery.sqlite_path import Plain
from hub.targets.base import ThreadAnchor

AnchorKey = tuple[str, str]  # (target id, thread hash)


def thread_hash(thread_key: str) -> str:
    return hashlib.sha256(thread_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewAnchor:
    target_id: str
    thread_key: str
    remote_id: str | None
    remote_url: str | None
    delivery_id: str


_ta = t.thread_anchors
_LOAD = sa.select(_ta.c.target_id, _ta.c.thread_hash, _ta.c.remote_id, _ta.c.remote_url).where(
    sa.tuple_(_ta.c.target_id, _ta.c.thread_hash).in_(sa.bindparam("keys", expanding=True))
)  # built once


async def load_anchors(engine: AsyncEngine, keys: Iterable[AnchorKey]) -> dict[AnchorKey, ThreadAnchor]:
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    async with engine.connect() as conn:
        rows = await conn.execute(_LOAD, {"keys": wanted})
        return {(r.target_id, r.thread_hash): ThreadAnchor(r.remote_id, r.remote_url) for r in rows}


def anchor_rows(anchors: list[NewAnchor], now: float) -> list[dict[str, object]]:
    return [
        {
            "target_id": a.target_id,
            "thread_hash": thread_hash(a.thread_key),
            "thread_key": a.thread_key,
            "remote_id": a.remote_id,
            "remote_url": a.remote_url,
            "delivery_id": a.delivery_id,
            "created_at": now,
        }
        for a in anchors
    ]


async def write_anchors(conn: AsyncConnection, anchors: list[NewAnchor], now: float) -> None:
    """Inside the caller's transaction; an anchor already there is kept (the thread's first post)."""
    if anchors:
        stmt = insert_ignoring_conflicts(t.thread_anchors, conn.dialect.name, "target_id", "thread_hash")
        await conn.execute(stmt, anchor_rows(anchors, now))


# the same insert on the embedded default's writer thread (hub/delivery/sqlite_path.py)
ANCHOR_SQLITE = Plain(insert_ignoring_conflicts(t.thread_anchors, "sqlite", "target_id", "thread_hash"))
# and on Postgres's plain asyncpg path (hub/delivery/pg_path.py)
ANCHOR_PG = PlainPg(insert_ignoring_conflicts(t.thread_anchors, "postgresql", "target_id", "thread_hash"))
