"""Stripe: Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>; the key is the
whole whsec_… secret as UTF-8 bytes. Doc: https://docs.stripe.com/webhooks#verify-manually
(and stripe-python stripe/_webhook.py, WebhookSignature.verify_header). Fixtures: tests/fixtures/stripe/SOURCES.md."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "stripe"
SECRET = "whsec_test_secret"  # the secret of stripe-python's webhook tests
WRONG_SECRET = "whsec_other_secret"
BODY_SIGNED = True
TIMESTAMPED = True
PROOF_HEADERS = ["Stripe-Signature"]


def header(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    return req.with_headers(**{"Stripe-Signature": header(secret, req.body, int(now))})
