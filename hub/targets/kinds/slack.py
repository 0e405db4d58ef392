"""Slack incoming webhook: ``{text, blocks}`` in Slack mrkdwn (links ``<url|text>``, bold ``*x*``).

Documented at https://api.slack.com/messaging/webhooks and the Block Kit reference (providers.md B2,
§0.4): the URL is the secret, the answer is ``200 ok``; ``text`` is the notification fallback (no more
than 40,000 characters), a header block holds 150 characters, a section's text 3,000, at most 10 fields
of 2,000. A removed webhook answers 404 or 410: the target is disabled.
"""

from __future__ import annotations

from typing import Any

from hub.mapping.post import Mention, Post
from hub.targets.base import Manifest, OutboundRequest, SecretUrl, SendInfo, Target, TargetConfig
from hub.targets.text import fit, follow_up_of, markdown_of, more_markdown, slack_escape, to_mrkdwn

TEXT_LIMIT = 40_000
SECTION_LIMIT = 3_000


class SlackConfig(TargetConfig):
    url: SecretUrl  # https://hooks.slack.com/services/…: the URL is the secret
    username: str | None = None  # ignored by Slack's incoming webhooks, kept for compatible receivers
    icon_url: str | None = None


def fallback_text(post: Post, first_url: str | None) -> str:
    text = to_mrkdwn(markdown_of(post, follow_up_of(first_url)))
    return fit(text, TEXT_LIMIT, to_mrkdwn(more_markdown(post.link)))


def blocks(post: Post, first_url: str | None = None) -> list[dict[str, Any]]:
    """Block Kit: header, body section (cut with a link to the rest), fields, context."""
    out: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": fit(post.title, 150), "emoji": True}},
    ]
    if post.body:
        text = fit(to_mrkdwn(post.body), SECTION_LIMIT, to_mrkdwn(more_markdown(post.link)))
        out.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    if post.fields:
        out.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": fit(f"*{slack_escape(f.name)}*\n{to_mrkdwn(f.value)}", 2000)}
                    for f in post.fields[:10]
                ],
            }
        )
    context = []
    if post.author:
        if post.author.avatar:
            context.append({"type": "image", "image_url": post.author.avatar, "alt_text": post.author.name})
        context.append({"type": "mrkdwn", "text": slack_escape(post.author.name)})
    if post.link:
        context.append({"type": "mrkdwn", "text": f"<{slack_escape(post.link)}|Open>"})
    if first_url:
        context.append({"type": "mrkdwn", "text": to_mrkdwn(follow_up_of(first_url) or "")})
    if context:
        out.append({"type": "context", "elements": context})
    return out


class SlackTarget(Target):
    kind = "slack"
    Config = SlackConfig
    manifest = Manifest(
        title="Slack incoming webhook",
        description="A Block Kit message through an incoming webhook; no threads (later posts of an object "
        "link the first when its link is known). For threads, use slack-api.",
        profile="incoming-webhook",
        threading="none",
        body_limit=SECTION_LIMIT,
        example={"url": "https://hooks.slack.com/services/T000/B000/XXXX"},
        docs="https://api.slack.com/messaging/webhooks",
    )

    def mention(self, person: Mention) -> str | None:
        """Slack's ``<@U…>`` from the person's Slack user id."""
        user = person.identities.get("slack")
        return f"<@{user}>" if user else None

    def build_request(self, post: Post, config: SlackConfig, info: SendInfo) -> OutboundRequest:
        first_url = info.anchor.remote_url if info.anchor else None
        body: dict[str, Any] = {"text": fallback_text(post, first_url), "blocks": blocks(post, first_url)}
        if config.username:
            body["username"] = config.username
        if config.icon_url:
            body["icon_url"] = config.icon_url
        return OutboundRequest("POST", str(config.url), {"Idempotency-Key": info.idempotency_key}, body)
