"""Box Webhooks V2, as https://developer.box.com/guides/webhooks/v2/signatures-v2/ signs a delivery:
``BOX-DELIVERY-TIMESTAMP`` is an RFC 3339 time, ``BOX-SIGNATURE-PRIMARY`` (and ``-SECONDARY`` with the
secondary key) = base64(HMAC-SHA256(key, body bytes + timestamp bytes)), with ``BOX-SIGNATURE-VERSION: 1``
and ``BOX-SIGNATURE-ALGORITHM: HmacSHA256`` (https://developer.box.com/guides/webhooks/handle/payload/)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

from tests.conformance.kit import Req

ID = "box"
SECRET = "SamplePrimaryKey"  # the keys of the SDKs' tests
WRONG_SECRET = "IncorrectKey"
BODY_SIGNED = True
TIMESTAMPED = True
PROOF_HEADERS = ["BOX-SIGNATURE-PRIMARY", "BOX-DELIVERY-TIMESTAMP", "BOX-SIGNATURE-VERSION", "BOX-SIGNATURE-ALGORITHM"]


def box_signature(key: str, body: bytes, timestamp: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).digest()).decode()


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    timestamp = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
    headers = {
        "BOX-DELIVERY-TIMESTAMP": timestamp,
        "BOX-SIGNATURE-VERSION": "1",
        "BOX-SIGNATURE-ALGORITHM": "HmacSHA256",
        "BOX-SIGNATURE-PRIMARY": box_signature(secret, req.body, timestamp),
    }
    if settings.get("secondary_key"):
        headers["BOX-SIGNATURE-SECONDARY"] = box_signature(settings["secondary_key"], req.body, timestamp)
    return req.with_headers(**headers)
