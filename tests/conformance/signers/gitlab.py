"""GitLab: the webhook's secret token, sent verbatim in ``X-Gitlab-Token``; no signature, no timestamp.

Doc: https://docs.gitlab.com/user/project/integrations/webhooks/#create-a-webhook — "Secret token: … sent with
the webhook request in the X-Gitlab-Token HTTP header"; delivery headers (X-Gitlab-Event,
X-Gitlab-Event-UUID, Idempotency-Key, X-Gitlab-Instance, X-Gitlab-Webhook-UUID) in the same page's
"Delivery headers"; payloads from https://docs.gitlab.com/user/project/integrations/webhook_events/
"""

from __future__ import annotations

from typing import Any

from tests.conformance.kit import Req

ID = "gitlab"
SECRET = "glwt-7Hq2mVx9Lr4sK8pD"
WRONG_SECRET = "glwt-7Hq2mVx9Lr4sK8pE"
BODY_SIGNED = False
TIMESTAMPED = False
PROOF_HEADERS = ["X-Gitlab-Token"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    return req.with_headers(**{"X-Gitlab-Token": secret})
