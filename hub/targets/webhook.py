"""Generic webhook: the canonical Post as JSON, with an optional bearer token."""

from __future__ import annotations

from pydantic import AnyHttpUrl

from hub.mapping.post import Post
from hub.targets.base import OutboundRequest, Target, TargetConfig


class WebhookConfig(TargetConfig):
    url: AnyHttpUrl
    bearer_token: str | None = None


class WebhookTarget(Target):
    kind = "webhook"
    title = "Webhook (JSON)"
    description = "POSTs {idempotency_key, post} as JSON; optional Authorization: Bearer."
    Config = WebhookConfig
    secret_fields = ("url", "bearer_token")

    def build_request(self, post: Post, config: WebhookConfig, idempotency_key: str) -> OutboundRequest:
        headers = {"Idempotency-Key": idempotency_key}
        if config.bearer_token:
            headers["Authorization"] = f"Bearer {config.bearer_token}"
        body = {"idempotency_key": idempotency_key, "post": post.model_dump(mode="json")}
        return OutboundRequest("POST", str(config.url), headers, body)
