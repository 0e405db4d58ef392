"""Folding deliveries into a carrier (coalescing and digests, hub/delivery/calm.py): the carrier claims
the later pending deliveries of its route and business object (or of its digest), which keep their rows
with status ``folded`` and ``folded_into`` naming it, so the lineage shows every event it carried."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config_cache import RouteInfo
from hub.db import tables as t
from hub.delivery.calm import MAX_DIGEST_ITEMS, updates_text
from hub.mapping.post import Post, PostField

_d, _e = t.deliveries, t.events


async def fold(engine: AsyncEngine, row: Any, route: RouteInfo, now: float) -> list[Any]:
    """Fold what waits behind ``row`` into it; the events of every delivery folded into it (this time and
    on earlier tries), oldest first, with the columns the engine renders from."""
    due = [_d.c.next_attempt_at <= now] if route.digest is not None else [_d.c.created_at <= now]
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(_d)
            .where(
                _d.c.route_id == row.route_id,
                _d.c.target_id == row.target_id,
                _d.c.order_key == row.order_key,
                _d.c.status == "pending",
                _d.c.id > row.id,
                *due,
            )
            .values(status="folded", folded_into=row.id, lease_until=None, updated_at=now)
        )
        stmt = (
            sa.select(_d.c.event_id, *t.EVENT_FOR_MAPPING)
            .join(_e, _e.c.id == _d.c.event_id)
            .where(_d.c.folded_into == row.id)
            .order_by(_e.c.received_at, _d.c.id)
        )
        return list(await conn.execute(stmt))


def with_updates(post: Post, count: int) -> Post:
    """The last state of a business object, saying how many changes the post folds."""
    if count > 1:
        post.fields = [*post.fields, PostField(name="Updates", value=updates_text(count))]
    return post


def digest_post(posts: list[Post], carrier: Any, source_name: str) -> Post:
    """One post listing the day's events of a route (the first ones; the rest counted)."""
    lines = [f"- [{p.title}]({p.link})" if p.link else f"- {p.title}" for p in posts[:MAX_DIGEST_ITEMS]]
    if len(posts) > MAX_DIGEST_ITEMS:
        lines.append(f"- … and {len(posts) - MAX_DIGEST_ITEMS} more")
    title = f"Digest: {updates_text(len(posts))}" + (f" from {source_name}" if source_name else "")
    return Post(
        title=title,
        body="\n".join(lines),
        event_type="digest",
        event_id=str(carrier.event_id),
        source_id=str(carrier.source_id),
        mentions=[m for p in posts for m in p.mentions],
    )
