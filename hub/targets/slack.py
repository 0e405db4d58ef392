"""Slack incoming webhook with Block Kit; ``text`` carries Markdown for Mattermost and Rocket.Chat."""

from __future__ import annotations

import re
from typing import Any

from pydantic import AnyHttpUrl

from hub.mapping.post import Post
from hub.targets.base import OutboundRequest, Target, TargetConfig

_LINK = re.compile(r"\[([^\]]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*")


class SlackConfig(TargetConfig):
    url: AnyHttpUrl  # https://hooks.slack.com/services/…: the URL is the secret
    username: str | None = None
    icon_url: str | None = None


def escape(text: str) -> str:
    """Slack's control characters: without this, event text saying <!channel> pings a whole channel."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_mrkdwn(markdown: str) -> str:
    """The few Markdown constructs mappings use, in Slack's mrkdwn; event text is escaped first."""
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", escape(markdown))
    return _BOLD.sub(r"*\1*", text)


def markdown_text(post: Post) -> str:
    title = f"**[{post.title}]({post.link})**" if post.link else f"**{post.title}**"
    parts = [title]
    if post.body:
        parts.append(post.body)
    if post.fields:
        parts.append(" · ".join(f"**{f.name}:** {f.value}" for f in post.fields))
    return escape("\n".join(parts))


def blocks(post: Post) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": post.title[:150], "emoji": True}},
    ]
    if post.body:
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": to_mrkdwn(post.body)[:3000]}})
    if post.fields:
        out.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{escape(f.name)}*\n{to_mrkdwn(f.value)}"[:2000]}
                    for f in post.fields[:10]
                ],
            }
        )
    context = []
    if post.author:
        if post.author.avatar:
            context.append({"type": "image", "image_url": post.author.avatar, "alt_text": post.author.name})
        context.append({"type": "mrkdwn", "text": escape(post.author.name)})
    if post.link:
        context.append({"type": "mrkdwn", "text": f"<{escape(post.link)}|Open>"})
    if context:
        out.append({"type": "context", "elements": context})
    return out


class SlackTarget(Target):
    kind = "slack"
    title = "Slack incoming webhook"
    description = "Slack Block Kit message; Mattermost and Rocket.Chat read its Markdown text."
    Config = SlackConfig
    secret_fields = ("url",)

    def build_request(self, post: Post, config: SlackConfig, idempotency_key: str) -> OutboundRequest:
        body: dict[str, Any] = {"text": markdown_text(post), "blocks": blocks(post)}
        if config.username:
            body["username"] = config.username
        if config.icon_url:
            body["icon_url"] = config.icon_url
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": idempotency_key}, body)
