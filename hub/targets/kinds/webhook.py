"""Generic webhook: the canonical Post as JSON, for an in-house receiver.

With a ``secret`` (``whsec_…``) hub signs as Standard Webhooks do (https://www.standardwebhooks.com,
providers.md §3): ``webhook-id`` (the delivery's id, the same on every retry), ``webhook-timestamp`` and
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``, computed by the
``standardwebhooks`` library. Authentication: a static ``bearer_token`` or OAuth2 client credentials.
A receiver that answers JSON ``{"id": …, "url": …}`` gives hub the post it created; later posts of the
same business object carry it as ``first_post``.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from standardwebhooks import Webhook

from hub.mapping.post import Post
from hub.targets.base import Answer, Manifest, OutboundRequest, SecretUrl, SendInfo, SendResult, Target, TargetConfig
from hub.targets.http import encode_json
from hub.targets.oauth import OAuth2Bearer, OAuth2ClientCredentials, client_credentials


class WebhookConfig(TargetConfig):
    url: SecretUrl
    secret: SecretStr | None = Field(None, description="A Standard Webhooks signing secret (whsec_…).")
    bearer_token: SecretStr | None = None
    oauth2: OAuth2ClientCredentials | None = Field(None, description="OAuth2 client credentials.")

    @field_validator("secret")
    @classmethod
    def _signing_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            text = value.get_secret_value()
            try:
                key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
            except ValueError:
                key = b""
            if not text.startswith("whsec_") or not 24 <= len(key) <= 64:
                raise ValueError("a Standard Webhooks secret is whsec_ and 24 to 64 bytes in base64")
        return value

    @model_validator(mode="after")
    def _one_auth(self) -> WebhookConfig:
        if self.bearer_token is not None and self.oauth2 is not None:
            raise ValueError("give bearer_token or oauth2, not both")
        return self


def signature_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


class WebhookTarget(Target):
    kind = "webhook"
    keeps_mention_tokens = True  # the canonical Post: its mentions list and tokens, as they are
    Config = WebhookConfig
    manifest = Manifest(
        title="Webhook (JSON)",
        description="POSTs {idempotency_key, post, first_post?} as JSON; optional Standard Webhooks signature, "
        "bearer token or OAuth2 client credentials.",
        profile="incoming-webhook",
        threading="none",
        body_limit=40_000,
        example={
            "url": "https://receiver.example.com/hub",
            "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "oauth2": {
                "token_url": "https://login.example.com/oauth2/token",
                "client_id": "hub",
                "client_secret": "<client secret>",
                "scope": "posts.write",
            },
        },
        docs="https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md",
    )

    def build_request(self, post: Post, config: WebhookConfig, info: SendInfo) -> OutboundRequest:
        body: dict[str, Any] = {"idempotency_key": info.idempotency_key, "post": post.model_dump(mode="json")}
        if info.anchor:
            body["first_post"] = {"id": info.anchor.remote_id, "url": info.anchor.remote_url}
        headers = {"Idempotency-Key": info.idempotency_key}
        if config.secret:
            secret = config.secret.get_secret_value()
            headers |= signature_headers(secret, info.idempotency_key, int(info.now), encode_json(body))
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token.get_secret_value()}"
        auth = OAuth2Bearer(client_credentials(config.oauth2), info.tokens) if config.oauth2 else None
        return OutboundRequest("POST", str(config.url), headers, body, auth=auth)

    def read_answer(self, answer: Answer, config: WebhookConfig, now: float) -> SendResult:
        result = super().read_answer(answer, config, now)
        data = answer.json()
        if result.outcome == "delivered" and isinstance(data, dict):
            if isinstance(data.get("id"), str | int):
                result.remote_id = str(data["id"])[:300]
            if isinstance(data.get("url"), str) and data["url"].startswith(("https://", "http://")):
                result.remote_url = data["url"][:2000]
        return result
