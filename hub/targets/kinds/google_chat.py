"""Google Chat incoming webhook: one thread per business object (``thread.threadKey``).

Documented at https://developers.google.com/chat/api/reference/rest/v1/spaces.messages/create and
https://developers.google.com/workspace/chat/format-messages (providers.md B8, §0.4): ``POST`` the
webhook URL (key and token in its query) with ``{text, thread: {threadKey}}`` and the query
``messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD``; ``requestId`` is the delivery's id, so a
retry returns the message already created instead of posting twice. The whole message is at most
32,000 bytes. Text syntax: ``*bold*``, ``<url|text>``. The answer is the Message (``name``, ``thread``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from hub.mapping.post import Mention, Post
from hub.targets.base import Answer, Manifest, OutboundRequest, SecretUrl, SendInfo, SendResult, Target, TargetConfig
from hub.targets.text import fit, markdown_of, more_markdown, to_google_chat

MESSAGE_BYTES = 32_000
MAX_THREAD_KEY = 4_000  # "Supports up to 4000 characters"; a longer key is sent as its hash


class GoogleChatConfig(TargetConfig):
    url: SecretUrl  # https://chat.googleapis.com/v1/spaces/<space>/messages?key=…&token=…


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def thread_key(key: str) -> str:
    return key if len(key) <= MAX_THREAD_KEY else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class GoogleChatTarget(Target):
    kind = "google-chat"
    Config = GoogleChatConfig
    manifest = Manifest(
        title="Google Chat (incoming webhook)",
        description="A text message in a space; the posts of one business object share a thread (threadKey).",
        profile="incoming-webhook",
        threading="key",
        body_limit=MESSAGE_BYTES,
        limit_unit="bytes",
        example={"url": "https://chat.googleapis.com/v1/spaces/<space>/messages?key=<key>&token=<token>"},
        docs="https://developers.google.com/chat/api/reference/rest/v1/spaces.messages/create",
    )

    def mention(self, person: Mention) -> str | None:
        """Google Chat's ``<users/{user}>`` (format messages: mention a user)."""
        user = person.identities.get("google_chat")
        if not user:
            return None
        return f"<users/{user.removeprefix('users/')}>"

    def build_request(self, post: Post, config: GoogleChatConfig, info: SendInfo) -> OutboundRequest:
        body: dict[str, Any] = {"text": ""}
        params = {"requestId": info.idempotency_key}
        if post.thread_key:
            body["thread"] = {"threadKey": thread_key(post.thread_key)}
            params["messageReplyOption"] = "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
        room = MESSAGE_BYTES - _json_bytes(body) + 2  # what the text itself may take, JSON-escaped
        text = to_google_chat(markdown_of(post))
        body["text"] = fit(text, room, to_google_chat(more_markdown(post.link)), _json_bytes)
        url = str(httpx.URL(str(config.url)).copy_merge_params(params))
        return OutboundRequest("POST", url, {"Idempotency-Key": info.idempotency_key}, body)

    def read_answer(self, answer: Answer, config: GoogleChatConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        data = answer.json()
        if result.outcome == "delivered" and isinstance(data, dict) and isinstance(data.get("name"), str):
            result.remote_id = data["name"]  # spaces/<space>/messages/<message>
        return result
