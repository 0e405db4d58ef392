"""Discord execute webhook: an embed per post, ``?wait=true`` so the answer is the created message.

Documented in discord/discord-api-docs (resources/webhook "Execute Webhook", resources/message "Embed
Limits", topics/rate-limits; providers.md B7): ``content`` up to 2,000 characters, up to 10 embeds; an
embed's title 256, description 4,096, 25 fields (name 256, value 1,024), author name 256, and all of
them together 6,000 characters. ``allowed_mentions`` keeps event text from pinging anyone. A 429
answers JSON ``retry_after`` (seconds, a float) besides the Retry-After header: hub waits the longer. A
webhook answering 404 is gone and must not be reused. No threads here: a later post of an object links
the first when its link is known.
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.mapping.post import Mention, Post
from hub.targets.base import (
    MAX_RETRY_AFTER,
    Answer,
    Manifest,
    OutboundRequest,
    SecretUrl,
    SendInfo,
    SendResult,
    Target,
    TargetConfig,
)
from hub.targets.text import fit, follow_up_of, more_markdown, quiet_mentions

CONTENT, TITLE, DESCRIPTION, FIELDS, FIELD_NAME, FIELD_VALUE, AUTHOR, TOTAL = 2000, 256, 4096, 25, 256, 1024, 256, 6000


class DiscordConfig(TargetConfig):
    url: SecretUrl  # https://discord.com/api/webhooks/<id>/<token>: the token is the secret
    username: str | None = None
    avatar_url: str | None = None


def embed(post: Post) -> dict[str, Any]:
    """Title, author and body first; the fields take what is left of the 6,000 characters."""
    out: dict[str, Any] = {"title": fit(post.title, TITLE)}
    if post.link:
        out["url"] = post.link
    left = TOTAL - len(out["title"])
    if post.author:
        out["author"] = {"name": fit(post.author.name, AUTHOR)}
        if post.author.url:
            out["author"]["url"] = post.author.url
        if post.author.avatar:
            out["author"]["icon_url"] = post.author.avatar
        left -= len(out["author"]["name"])
    if post.body:
        out["description"] = fit(quiet_mentions(post.body), min(DESCRIPTION, left), more_markdown(post.link))
        left -= len(out["description"])
    fields = []
    for f in post.fields[:FIELDS]:
        name, value = fit(f.name, FIELD_NAME), fit(quiet_mentions(f.value), FIELD_VALUE)
        if len(name) + len(value) > left:
            break
        fields.append({"name": name, "value": value, "inline": True})
        left -= len(name) + len(value)
    if fields:
        out["fields"] = fields
    return out


class DiscordTarget(Target):
    kind = "discord"
    Config = DiscordConfig
    manifest = Manifest(
        title="Discord (webhook)",
        description="An embed in the webhook's channel; no threads (later posts of an object link the first "
        "when its link is known).",
        profile="incoming-webhook",
        threading="none",
        body_limit=DESCRIPTION,
        example={"url": "https://discord.com/api/webhooks/<id>/<token>"},
        docs="https://discord.com/developers/docs/resources/webhook#execute-webhook",
    )

    def mention(self, person: Mention) -> str | None:
        """Discord's ``<@id>`` (developer docs, message formatting: User mention)."""
        user = person.identities.get("discord")
        return f"<@{user}>" if user and user.isdigit() else None

    def build_request(self, post: Post, config: DiscordConfig, info: SendInfo) -> OutboundRequest:
        body: dict[str, Any] = {"embeds": [embed(post)], "allowed_mentions": {"parse": []}}
        if follow := follow_up_of(info.anchor.remote_url if info.anchor else None):
            body["content"] = fit(follow, CONTENT)
        if config.username:
            body["username"] = config.username
        if config.avatar_url:
            body["avatar_url"] = config.avatar_url
        url = str(httpx.URL(str(config.url)).copy_merge_params({"wait": "true"}))
        return OutboundRequest("POST", url, {"Idempotency-Key": info.idempotency_key}, body)

    def read_answer(self, answer: Answer, config: DiscordConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        data = answer.json()
        if not isinstance(data, dict):
            return result
        if result.outcome == "delivered" and isinstance(data.get("id"), str):
            result.remote_id = data["id"]
        asked = data.get("retry_after")
        if answer.status == 429 and isinstance(asked, int | float) and asked >= 0:
            result.retry_after = min(max(float(asked), result.retry_after or 0.0), MAX_RETRY_AFTER)
        return result
