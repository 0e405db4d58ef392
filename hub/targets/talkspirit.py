"""Talkspirit incoming webhook: one post per business object, later events as comments (thread_id)."""

from __future__ import annotations

from typing import Any

from pydantic import AnyHttpUrl

from hub.mapping.post import Post
from hub.targets.base import OutboundRequest, Target, TargetConfig


class TalkspiritConfig(TargetConfig):
    url: AnyHttpUrl  # https://webhook.talkspirit.com/v1/incoming/<token>: the token is the secret
    display_name: str = "hub"
    icon: str | None = None


def content_of(post: Post) -> str:
    parts = [post.body] if post.body else []
    if post.fields:
        parts.append("\n".join(f"**{f.name}:** {f.value}" for f in post.fields))
    return "\n\n".join(parts) or post.title


class TalkspiritTarget(Target):
    kind = "talkspirit"
    title = "Talkspirit"
    description = "Talkspirit incoming webhook (title, content, url, contact, thread_id)."
    Config = TalkspiritConfig
    secret_fields = ("url",)

    def build_request(self, post: Post, config: TalkspiritConfig, idempotency_key: str) -> OutboundRequest:
        contact: dict[str, Any] = {"display_name": post.author.name if post.author else config.display_name}
        if post.author and post.author.url:
            contact["url"] = post.author.url
        icon = (post.author.avatar if post.author else None) or config.icon
        if icon:
            contact["icon"] = icon
        body: dict[str, Any] = {"title": post.title, "content": content_of(post), "contact": contact}
        if post.link:
            body["url"] = post.link
        if post.thread_key:
            body["thread_id"] = post.thread_key
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": idempotency_key}, body)
