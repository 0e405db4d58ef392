"""Linear: ``Linear-Signature`` = hex HMAC-SHA256(webhook signing secret, raw body); the body carries
``webhookTimestamp`` (ms since the epoch, set when Linear sends), which receivers compare with their clock.

Docs: https://linear.app/developers/webhooks ("Securing webhooks"); Linear's own SDK,
linear/linear packages/sdk/src/webhooks/client.ts (LINEAR_WEBHOOK_SIGNATURE_HEADER = "linear-signature",
LINEAR_WEBHOOK_TS_FIELD = "webhookTimestamp", hex HMAC-SHA256 of the raw body, one minute of tolerance).
The payload fields are the SDK schema's EntityWebhookPayload / IssueWebhookPayload / CommentWebhookPayload.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace
from typing import Any

from tests.conformance.kit import Req

ID = "linear"
SECRET = "lin_wh_4f2b9c7e1d3a5b8c0e6f2a4d"
WRONG_SECRET = "lin_wh_4f2b9c7e1d3a5b8c0e6f2a4e"
BODY_SIGNED = True
TIMESTAMPED = True
PROOF_HEADERS = ["Linear-Signature"]

_TS = re.compile(rb'("webhookTimestamp"\s*:\s*)-?\d+(?:\.\d+)?')


def stamp(body: bytes, now: float) -> bytes:
    """The body as Linear sends it at ``now``: webhookTimestamp set to that instant, in milliseconds."""
    return _TS.sub(lambda m: m.group(1) + str(int(now * 1000)).encode(), body, count=1)


def signature(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    body = stamp(req.body, now)
    return replace(req, body=body).with_headers(**{"Linear-Signature": signature(body, secret)})
