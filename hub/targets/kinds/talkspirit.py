"""Talkspirit incoming webhook: one post per business object, later events as its comments (thread_id).

Documented at https://talkspirit.github.io/docs/incoming-webhooks (providers.md B1): JSON
``{title, content, url, contact{display_name, url, icon}, thread_id}``; a later webhook with the same
``thread_id`` is added as a comment of the first post. Answers and limits are not documented.
"""

from __future__ import annotations

from typing import Any

from hub.mapping.post import Post
from hub.targets.base import Manifest, OutboundRequest, SecretUrl, SendInfo, Target, TargetConfig
from hub.targets.text import fit, more_markdown

LIMIT = 20_000  # not documented: a generous cut so one huge event cannot be refused as a whole


class TalkspiritConfig(TargetConfig):
    url: SecretUrl  # https://webhook.talkspirit.com/v1/incoming/<token>: the token is the secret
    display_name: str = "hub"
    icon: str | None = None


def content_of(post: Post) -> str:
    parts = [post.body] if post.body else []
    if post.fields:
        parts.append("\n".join(f"**{f.name}:** {f.value}" for f in post.fields))
    return fit("\n\n".join(parts), LIMIT, more_markdown(post.link)) or post.title


class TalkspiritTarget(Target):
    kind = "talkspirit"
    Config = TalkspiritConfig
    manifest = Manifest(
        title="Talkspirit",
        description="Talkspirit incoming webhook (title, content, url, contact, thread_id): one post per "
        "business object, later events as its comments.",
        profile="incoming-webhook",
        threading="key",
        body_limit=LIMIT,
        example={"url": "https://webhook.talkspirit.com/v1/incoming/<token>", "display_name": "GitHub"},
        docs="https://talkspirit.github.io/docs/incoming-webhooks",
    )

    def build_request(self, post: Post, config: TalkspiritConfig, info: SendInfo) -> OutboundRequest:
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
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": info.idempotency_key}, body)
