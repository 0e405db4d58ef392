"""HubSpot v3: X-HubSpot-Signature-v3 = base64 HMAC-SHA256(client secret, method + URI + body + timestamp),
X-HubSpot-Request-Timestamp in milliseconds; in the URI the characters of HubSpot's table are decoded.
Doc: https://developers.hubspot.com/docs/api/webhooks/validating-requests ("Validate the v3 request signature").
HubSpot also sends the v1/v2 X-HubSpot-Signature for backwards compatibility; the generic suite signs v3
only (each proof header removed must be a missing signature), tests/conformance/test_provider_hubspot.py
covers v1, v2 and both together. Fixtures: tests/fixtures/hubspot/SOURCES.md."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "hubspot"
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"  # the docs' example client secret
WRONG_SECRET = "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"
BODY_SIGNED = True
TIMESTAMPED = True
PROOF_HEADERS = ["X-HubSpot-Signature-v3", "X-HubSpot-Request-Timestamp"]

# the docs' table: "decode any of the URL-encoded characters listed in the table below"
DOC_TABLE = [("%3A", ":"), ("%2F", "/"), ("%3F", "?"), ("%40", "@"), ("%21", "!"), ("%24", "$")]
DOC_TABLE += [("%27", "'"), ("%28", "("), ("%29", ")"), ("%2A", "*"), ("%2C", ","), ("%3B", ";")]


def doc_decoded(uri: str) -> str:
    for encoded, decoded in DOC_TABLE:
        uri = uri.replace(encoded, decoded).replace(encoded.lower(), decoded)
    return uri


def v3(secret: str, method: str, uri: str, body: bytes, timestamp_ms: str) -> str:
    source = method.encode() + doc_decoded(uri).encode() + body + timestamp_ms.encode()
    return base64.b64encode(hmac.new(secret.encode(), source, hashlib.sha256).digest()).decode()


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    ts = str(int(now * 1000))
    return req.with_headers(
        **{"X-HubSpot-Signature-v3": v3(secret, req.method, req.url, req.body, ts), "X-HubSpot-Request-Timestamp": ts}
    )
