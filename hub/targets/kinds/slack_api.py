"""Slack Web API ``chat.postMessage`` with a bot token: one thread per business object.

Documented at https://api.slack.com/methods/chat.postMessage (providers.md B2, §0.4): ``POST
{url}/chat.postMessage`` with ``Authorization: Bearer xoxb-…`` and JSON ``{channel, text, blocks,
thread_ts}``; the answer is HTTP 200 with ``{"ok": true, "channel", "ts", "message"}`` or ``{"ok": false,
"error"}``. ``ratelimited`` / ``rate_limited`` are retried after Retry-After (seconds); ``internal_error``
("likely due to a transient issue on our end") is retried; every other error is dead (``fatal_error``
too: "some aspect of the operation" may have succeeded, a retry could post twice). The first post's
``ts`` is the thread's anchor; later posts carry it as ``thread_ts``.
"""

from __future__ import annotations

from typing import Any

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
    parse_retry_after,
    refuse,
)
from hub.targets.kinds.slack import SECTION_LIMIT, blocks, fallback_text

RETRIED = {"ratelimited", "rate_limited", "internal_error"}


class SlackApiConfig(TargetConfig):
    token: SecretStr = Field(description="A bot token (xoxb-…) with the chat:write scope.")
    channel: str = Field(min_length=1, description="A channel id (C…) the bot is a member of.")
    url: AnyHttpUrl = Field(AnyHttpUrl("https://slack.com/api"), description="The Web API base.")


class SlackApiTarget(Target):
    kind = "slack-api"
    Config = SlackApiConfig
    manifest = Manifest(
        title="Slack (Web API, threads)",
        description="chat.postMessage with a bot token: the first post of a business object opens a thread, "
        "later ones reply in it (thread_ts).",
        profile="api",
        threading="anchor",
        body_limit=SECTION_LIMIT,
        example={"token": "xoxb-<bot token>", "channel": "C0123456789"},
        docs="https://api.slack.com/methods/chat.postMessage",
    )

    def mention(self, person: Mention) -> str | None:
        """Slack's ``<@U…>`` from the person's Slack user id."""
        user = person.identities.get("slack")
        return f"<@{user}>" if user else None

    direct_identity = "slack"

    def build_request(self, post: Post, config: SlackApiConfig, info: SendInfo) -> OutboundRequest:
        # a user id as the channel: the message goes to the app's direct conversation with that user
        channel = info.direct_to.identities["slack"] if info.direct_to else config.channel
        body: dict[str, Any] = {"channel": channel, "text": fallback_text(post, None), "blocks": blocks(post)}
        if info.anchor and info.anchor.remote_id and not info.direct_to:
            body["thread_ts"] = info.anchor.remote_id
        headers = {
            "Authorization": f"Bearer {config.token.get_secret_value()}",
            "Content-Type": "application/json; charset=utf-8",
            "Idempotency-Key": info.idempotency_key,
        }
        return OutboundRequest("POST", api_url(config.url, "/chat.postMessage"), headers, body)

    def read_answer(self, answer: Answer, config: SlackApiConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        if result.outcome != "delivered":
            return result
        data = answer.json()
        if not isinstance(data, dict):
            return refuse(result, "dead", "Slack answered something that is not its JSON")
        if data.get("ok") is not True:
            error = str(data.get("error") or "unknown_error")[:100]
            if error in RETRIED:
                return refuse(
                    result, "retry", f"Slack error: {error}", parse_retry_after(answer.headers.get("retry-after"), now)
                )
            return refuse(result, "dead", f"Slack error: {error}")
        ts = data.get("ts")
        result.remote_id = ts if isinstance(ts, str) else None
        return result
