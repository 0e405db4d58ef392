"""Rocket.Chat incoming integration: Markdown ``text`` and one Slack-style attachment.

Documented at https://docs.rocket.chat/docs/rocketchat-marketplace-integrations (providers.md B5): the
integration's URL (``https://<server>/hooks/<id>/<token>``) takes JSON ``{text, alias, emoji, avatar,
attachments}``. A message holds 5,000 characters by default (the server's Message_MaxAllowedSize)
[UNVERIFIED]. No threads: a later post of an object links the first when its link is known.
"""

from __future__ import annotations

from typing import Any

from hub.mapping.post import Mention, Post
from hub.targets.base import (
    Answer,
    Manifest,
    OutboundRequest,
    SecretUrl,
    SendInfo,
    SendResult,
    Target,
    TargetConfig,
    refuse,
)
from hub.targets.text import fit, follow_up_of, more_markdown, quiet_mentions

LIMIT = 5_000


class RocketChatConfig(TargetConfig):
    url: SecretUrl  # https://<server>/hooks/<integration id>/<token>: the token is the secret
    alias: str | None = None  # the name shown instead of the integration's
    avatar: str | None = None


def attachment(post: Post) -> dict[str, Any]:
    out: dict[str, Any] = {"title": post.title}
    if post.link:
        out["title_link"] = post.link
    if post.body:
        out["text"] = fit(quiet_mentions(post.body), LIMIT, more_markdown(post.link))
    if post.fields:
        out["fields"] = [{"short": True, "title": f.name, "value": quiet_mentions(f.value)} for f in post.fields]
    if post.author:
        out["author_name"] = post.author.name
        if post.author.url:
            out["author_link"] = post.author.url
        if post.author.avatar:
            out["author_icon"] = post.author.avatar
    return out


class RocketChatTarget(Target):
    kind = "rocketchat"
    Config = RocketChatConfig
    manifest = Manifest(
        title="Rocket.Chat (incoming integration)",
        description="Markdown text with an attachment for the body and fields; no threads (later posts of "
        "an object link the first when its link is known).",
        profile="incoming-webhook",
        threading="none",
        body_limit=LIMIT,
        example={"url": "https://chat.example.com/hooks/<integration id>/<token>", "alias": "hub"},
        docs="https://docs.rocket.chat/docs/rocketchat-marketplace-integrations",
    )

    def mention(self, person: Mention) -> str | None:
        """Rocket.Chat's ``@username``."""
        user = person.identities.get("rocketchat")
        return f"@{user.lstrip('@')}" if user else None

    def build_request(self, post: Post, config: RocketChatConfig, info: SendInfo) -> OutboundRequest:
        first_url = info.anchor.remote_url if info.anchor else None
        title = f"**[{post.title}]({post.link})**" if post.link else f"**{post.title}**"
        text = "\n\n".join(p for p in (quiet_mentions(title), follow_up_of(first_url)) if p)
        body: dict[str, Any] = {"text": fit(text, LIMIT)}
        if post.body or post.fields or post.author:
            body["attachments"] = [attachment(post)]
        if config.alias:
            body["alias"] = config.alias
        if config.avatar:
            body["avatar"] = config.avatar
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": info.idempotency_key}, body)

    def read_answer(self, answer: Answer, config: RocketChatConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        data = answer.json()
        if result.outcome == "delivered" and isinstance(data, dict) and data.get("success") is False:
            return refuse(result, "dead", f"Rocket.Chat refused the message: {str(data.get('error'))[:200]}")
        return result
