"""Standard Webhooks v1: webhook-signature: v1,<base64 HMAC-SHA256(base64-decoded whsec key,
"msg_id.timestamp.body")>, timestamp within 5 minutes.
Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "standard-webhooks"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WRONG_SECRET = "whsec_" + base64.b64encode(b"another key, 24+ bytes long").decode()
BODY_SIGNED = True
TIMESTAMPED = True
PROOF_HEADERS = ["webhook-signature", "webhook-id", "webhook-timestamp"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    req = req.with_headers(**{"webhook-timestamp": str(int(now))})
    lower = {k.lower(): v for k, v in req.headers.items()}
    content = f"{lower['webhook-id']}.{lower['webhook-timestamp']}.".encode() + req.body
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return req.with_headers(**{"webhook-signature": "v1," + base64.b64encode(digest).decode()})
