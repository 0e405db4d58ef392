"""The two small stores targets may use, on hub's database: the inbox's posts and OAuth2 tokens
(encrypted). Targets receive these, never the database engine."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.crypto import SecretBox
from hub.db import tables as t
from hub.db.dialect import insert_ignoring_conflicts
from hub.ids import new_id
from hub.mapping.post import Post


class SqlInboxStore:
    """Posts delivered to inbox targets, readable at ``GET /api/v1/inbox``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def put(self, target_id: str, delivery_id: str, event_id: str, post: Post) -> str:
        """Store a post once per delivery (a retry changes nothing); returns the stored post's id."""
        post_id = new_id("post")
        stmt = insert_ignoring_conflicts(t.inbox_posts, self._engine.dialect.name, "delivery_id").values(
            id=post_id,
            target_id=target_id,
            delivery_id=delivery_id,
            event_id=event_id,
            post=post.model_dump(mode="json"),
            created_at=time.time(),
        )
        ip = t.inbox_posts
        async with self._engine.begin() as conn:
            await conn.execute(stmt)
            stored = await conn.scalar(sa.select(ip.c.id).where(ip.c.delivery_id == delivery_id))
        return str(stored or post_id)


class SqlTokenStore:
    """OAuth2 tokens per credential hash, sealed with hub's secret key."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def load(self, key: str) -> dict[str, Any] | None:
        ot = t.oauth_tokens
        async with self._engine.connect() as conn:
            sealed = await conn.scalar(sa.select(ot.c.token_enc).where(ot.c.credential == key))
        if not sealed:
            return None
        loaded: dict[str, Any] = json.loads(self._box.open(sealed))
        return loaded

    async def save(self, key: str, token: dict[str, Any]) -> None:
        ot = t.oauth_tokens
        values = {"token_enc": self._box.seal(json.dumps(token)), "updated_at": time.time()}
        async with self._engine.begin() as conn:
            res = await conn.execute(sa.update(ot).where(ot.c.credential == key).values(**values))
            if res.rowcount == 0:
                stmt = insert_ignoring_conflicts(ot, self._engine.dialect.name, "credential")
                await conn.execute(stmt.values(credential=key, **values))
