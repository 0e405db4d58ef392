"""Mattermost incoming webhook: Markdown ``text``.

Documented at https://developers.mattermost.com/integrate/webhooks/incoming/ (providers.md B4): ``POST
https://<server>/hooks/<key>`` with JSON ``{text, username?, icon_url?, props?}``; success is ``200`` with
the plain-text body ``ok``. Posts hold up to 16,383 characters (Mattermost 5.0+). No threads: a later
post of an object links the first when its link is known.
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
from hub.targets.text import fit, follow_up_of, markdown_of, more_markdown, quiet_mentions

LIMIT = 16_383


class MattermostConfig(TargetConfig):
    url: SecretUrl  # https://<server>/hooks/<key>: the key is the secret
    username: str | None = None  # shown instead of the webhook's name, when the server allows overrides
    icon_url: str | None = None


class MattermostTarget(Target):
    kind = "mattermost"
    Config = MattermostConfig
    manifest = Manifest(
        title="Mattermost (incoming webhook)",
        description="Markdown text in the webhook's channel; no threads (later posts of an object link the "
        "first when its link is known).",
        profile="incoming-webhook",
        threading="none",
        body_limit=LIMIT,
        example={"url": "https://mattermost.example.com/hooks/<key>"},
        docs="https://developers.mattermost.com/integrate/webhooks/incoming/",
    )

    def mention(self, person: Mention) -> str | None:
        """Mattermost's ``@username``."""
        user = person.identities.get("mattermost")
        return f"@{user.lstrip('@')}" if user else None

    def build_request(self, post: Post, config: MattermostConfig, info: SendInfo) -> OutboundRequest:
        first_url = info.anchor.remote_url if info.anchor else None
        text = quiet_mentions(markdown_of(post, follow_up_of(first_url)))
        body: dict[str, Any] = {"text": fit(text, LIMIT, more_markdown(post.link))}
        if config.username:
            body["username"] = config.username
        if config.icon_url:
            body["icon_url"] = config.icon_url
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": info.idempotency_key}, body)

    def read_answer(self, answer: Answer, config: MattermostConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        if result.outcome == "delivered" and answer.text().strip() != "ok":
            return refuse(result, "dead", "not Mattermost's answer (expected 'ok'): is the URL a Mattermost hook?")
        return result
