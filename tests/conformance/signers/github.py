"""GitHub: X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>.
Doc: https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "github"
SECRET = "It's a Secret to Everybody"
WRONG_SECRET = "It's a Secret to Nobody"
BODY_SIGNED = True
TIMESTAMPED = False
PROOF_HEADERS = ["X-Hub-Signature-256"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    digest = hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    return req.with_headers(**{"X-Hub-Signature-256": f"sha256={digest}"})
