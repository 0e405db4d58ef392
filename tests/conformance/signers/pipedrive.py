"""Pipedrive: no signature; the webhook's optional HTTP Basic credentials (``http_auth_user`` /
``http_auth_password`` when creating it) are sent as ``Authorization: Basic base64(user:password)`` (RFC 7617).

Docs: https://pipedrive.readme.io/docs/guide-for-webhooks-v2 (POST /v1/webhooks: subscription_url,
event_action, event_object, http_auth_user, http_auth_password, version) and
https://pipedrive.readme.io/docs/guide-for-webhooks (v1, "HTTP Auth" in the web app's form).
"""

from __future__ import annotations

import base64
from typing import Any

from tests.conformance.kit import Req

ID = "pipedrive"
SECRET = "pd-hook-Zq8v!3mK:x"  # a colon in the password is legal: only the first one splits user and password
WRONG_SECRET = "pd-hook-Zq8v!3mK:y"
BODY_SIGNED = False
TIMESTAMPED = False
PROOF_HEADERS = ["Authorization"]
SETTINGS = {"username": "hub-acme"}


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    token = base64.b64encode(f"{settings['username']}:{secret}".encode()).decode()
    return req.with_headers(Authorization=f"Basic {token}")
