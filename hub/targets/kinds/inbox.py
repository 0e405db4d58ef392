"""Inbox: posts stored in hub's own database, so the whole path works with nothing else running."""

from __future__ import annotations

import time

from hub.mapping.post import Post
from hub.targets.base import DeliveryContext, Manifest, SendResult, Target, TargetConfig


class InboxConfig(TargetConfig):
    pass


class InboxTarget(Target):
    kind = "inbox"
    keeps_mention_tokens = True  # the canonical Post: its mentions list and tokens, as they are
    Config = InboxConfig
    manifest = Manifest(
        title="Inbox (built in)",
        description="Keeps posts in hub's database; read them at GET /api/v1/inbox.",
        profile="built-in",
        threading="none",
        body_limit=40_000,
        example={},
        docs="GET /api/v1/inbox",
    )

    def preview(self, post: Post, config: InboxConfig) -> dict[str, object]:
        return {"post": post.model_dump(mode="json")}

    async def deliver(self, post: Post, config: InboxConfig, ctx: DeliveryContext) -> SendResult:
        if ctx.inbox is None:
            raise RuntimeError("the inbox target needs the inbox store")
        started = time.perf_counter()
        post_id = await ctx.inbox.put(ctx.target_id, ctx.delivery_id, ctx.event_id, post)
        return SendResult("delivered", latency_ms=(time.perf_counter() - started) * 1000, remote_id=post_id)
