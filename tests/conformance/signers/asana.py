"""Asana: ``X-Hook-Signature`` is "a SHA256 HMAC signature computed on the request body using the shared secret
transmitted during the handshake" (the ``X-Hook-Secret``), hex-encoded as Asana's example servers compute it
(``hmac.new(secret, body, sha256).hexdigest()``). Heartbeats (``events: []``) are signed the same way.
Docs: https://developers.asana.com/docs/webhooks-guide ("Receiving events", "Webhook security");
example server: Asana/devrel-examples ``python/webhooks/webhook_inspector.py``."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "asana"
SECRET = "b537207f20cbfa02357cf448134da559e8bd39d61597dcd5631b8012eae53e81"  # the doc's example X-Hook-Secret
WRONG_SECRET = "0000000000000000000000000000000000000000000000000000000000000000"
BODY_SIGNED = True
TIMESTAMPED = False
PROOF_HEADERS = ["X-Hook-Signature"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    digest = hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    return req.with_headers(**{"X-Hook-Signature": digest})
