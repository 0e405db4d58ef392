"""Jira Cloud admin webhooks with a secret: ``X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``.

Doc: https://developer.atlassian.com/cloud/jira/platform/webhooks/#secure-admin-webhooks — "Jira Cloud will
use your secret token to create a HMAC signature and include it in a X-Hub-Signature header, formatted as
method=signature, as defined by WebSub"; its example: secret ``It's a Secret to Everybody``, payload
``Hello World!`` → ``sha256=a4771c39fbe90f317c7824e83ddef3caae9cb3d976c214ace1f2937e133263c9``.
Atlassian's Data Center page says the same: https://confluence.atlassian.com/adminjiraserver/managing-webhooks-938846912.html
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "jira"
SECRET = "It's a Secret to Everybody"
WRONG_SECRET = "It's a Secret to Nobody"
BODY_SIGNED = True
TIMESTAMPED = False
PROOF_HEADERS = ["X-Hub-Signature"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    digest = hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    return req.with_headers(**{"X-Hub-Signature": f"sha256={digest}"})
