"""Dropbox: ``X-Dropbox-Signature`` is "the HMAC-SHA256 signature of the entire request body using your app
secret as the key", hex-encoded (as in Dropbox's sample app ``dropbox/mdwebhook``: ``hexdigest()``).
Doc: https://www.dropbox.com/developers/reference/webhooks ("Receiving notifications")."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "dropbox"
SECRET = "dbx-app-secret-0123456789"
WRONG_SECRET = "dbx-app-secret-9876543210"
BODY_SIGNED = True
TIMESTAMPED = False
PROOF_HEADERS = ["X-Dropbox-Signature"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    digest = hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    return req.with_headers(**{"X-Dropbox-Signature": digest})
