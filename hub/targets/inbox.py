"""Inbox: posts stored in hub's own database, so the whole path works with nothing else running."""

from __future__ import annotations

import time

from hub.db.dialect import insert_ignoring_conflicts
from hub.db.tables import inbox_posts
from hub.ids import new_id
from hub.mapping.post import Post
from hub.targets.base import DeliveryContext, SendResult, Target, TargetConfig


class InboxConfig(TargetConfig):
    pass


class InboxTarget(Target):
    kind = "inbox"
    title = "Inbox (built in)"
    description = "Keeps posts in hub's database; read them at GET /api/v1/inbox."
    Config = InboxConfig

    def preview(self, post: Post, config: InboxConfig) -> dict[str, object]:
        return {"post": post.model_dump(mode="json")}

    async def deliver(self, post: Post, config: InboxConfig, ctx: DeliveryContext) -> SendResult:
        started = time.perf_counter()
        stmt = insert_ignoring_conflicts(inbox_posts, ctx.engine.dialect.name, "delivery_id").values(
            id=new_id("post"),
            target_id=ctx.target_id,
            delivery_id=ctx.delivery_id,
            event_id=ctx.event_id,
            post=post.model_dump(mode="json"),
            created_at=time.time(),
        )
        async with ctx.engine.begin() as conn:
            await conn.execute(stmt)
        return SendResult("delivered", latency_ms=(time.perf_counter() - started) * 1000)
