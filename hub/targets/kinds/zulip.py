"""Zulip: a bot posts to a channel (stream), one topic per business object.

Documented at https://zulip.com/api/send-message (providers.md B9): ``POST {site}/api/v1/messages`` with
HTTP Basic ``bot email:API key`` and a form ``type=stream, to, topic, content`` (Zulip Markdown); the
answer is ``{"result": "success", "id": …}``, an error ``{"result": "error", "msg", "code"}``. Content
holds 10,000 bytes, a topic 60 characters: a longer thread key keeps its start and a short hash, so two
objects never share a topic.
"""

from __future__ import annotations

import base64
import hashlib
import json

from pydantic import AnyHttpUrl, Field, SecretStr

from hub.mapping.post import Mention, Post
from hub.targets.base import (
    Answer,
    Manifest,
    OutboundRequest,
    SendInfo,
    SendResult,
    Target,
    TargetConfig,
    api_url,
    refuse,
)
from hub.targets.text import byte_len, fit, markdown_of, more_markdown, quiet_mentions

CONTENT_BYTES = 10_000
TOPIC = 60


class ZulipConfig(TargetConfig):
    url: AnyHttpUrl = Field(description="The Zulip site, e.g. https://example.zulipchat.com")
    username: str = Field(min_length=1, description="The bot's email address.")
    token: SecretStr = Field(description="The bot's API key.")
    stream: str = Field(min_length=1, description="The channel (stream) to post in.")


def topic_of(post: Post) -> str:
    key = post.thread_key or post.title
    if len(key) <= TOPIC:
        return key
    return key[: TOPIC - 9] + "…" + hashlib.sha256(key.encode()).hexdigest()[:8]


class ZulipTarget(Target):
    kind = "zulip"
    Config = ZulipConfig
    manifest = Manifest(
        title="Zulip (bot)",
        description="A bot's message in a channel; the posts of one business object share a topic.",
        profile="api",
        threading="key",
        body_limit=CONTENT_BYTES,
        limit_unit="bytes",
        example={
            "url": "https://example.zulipchat.com",
            "username": "hub-bot@example.zulipchat.com",
            "token": "<API key>",
            "stream": "engineering",
        },
        docs="https://zulip.com/api/send-message",
    )

    def mention(self, person: Mention) -> str | None:
        """Zulip's ``@**Full Name**``, with ``|id`` when the directory holds the user id (help center:
        mention a user)."""
        user = person.identities.get("zulip")
        if not user:
            return None
        return f"@**{person.name}|{user}**" if user.isdigit() else f"@**{user}**"

    direct_identity = "zulip"

    def build_request(self, post: Post, config: ZulipConfig, info: SendInfo) -> OutboundRequest:
        credentials = f"{config.username}:{config.token.get_secret_value()}".encode()
        headers = {
            "Authorization": "Basic " + base64.b64encode(credentials).decode(),
            "Idempotency-Key": info.idempotency_key,
        }
        content = fit(quiet_mentions(markdown_of(post)), CONTENT_BYTES, more_markdown(post.link), byte_len)
        form = {"type": "stream", "to": config.stream, "topic": topic_of(post), "content": content}
        if info.direct_to:  # a direct message: `to` is a JSON list of user ids (or emails)
            user = info.direct_to.identities["zulip"]
            form = {"type": "direct", "to": json.dumps([int(user) if user.isdigit() else user]), "content": content}
        return OutboundRequest("POST", api_url(config.url, "/api/v1/messages"), headers, form=form)

    def read_answer(self, answer: Answer, config: ZulipConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        data = answer.json()
        if result.outcome != "delivered":
            if isinstance(data, dict) and isinstance(data.get("msg"), str) and result.outcome == "dead":
                result.error = f"{result.error}: {data['msg'][:200]}"
            return result
        if not isinstance(data, dict) or data.get("result") != "success":
            return refuse(result, "dead", "Zulip did not answer success")
        if isinstance(data.get("id"), int):
            result.remote_id = str(data["id"])
        return result
