"""Trello: ``X-Trello-Webhook`` = base64(HMAC-SHA1(application secret, raw body + callbackURL)), the callback URL
"exactly as it was provided during webhook creation" — for hub, the source's ingest_url (the request's URL).

Doc: https://developer.atlassian.com/cloud/trello/guides/rest-api/webhooks/ ("Webhook Signatures"; the older
developers.trello.com page: "The header is a base64 digest of an HMAC-SHA1 hash. The hashed content is the
concatenation of the full request body and the callbackURL exactly as it was provided during webhook creation.
The key used to sign this text is your application's secret.")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "trello"
SECRET = "5a1e4b8f0c2d6e9a3b7c1d5f8e2a4c6b9d0f3e7a1c5b8d2f6a9c3e7b1d4f8a2c"
WRONG_SECRET = "5a1e4b8f0c2d6e9a3b7c1d5f8e2a4c6b9d0f3e7a1c5b8d2f6a9c3e7b1d4f8a2d"
BODY_SIGNED = True
TIMESTAMPED = False
PROOF_HEADERS = ["X-Trello-Webhook"]


def signature(body: bytes, callback_url: str, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()).decode()


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    return req.with_headers(**{"X-Trello-Webhook": signature(req.body, req.url, secret)})
