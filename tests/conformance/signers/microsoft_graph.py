"""Microsoft Graph change notifications carry no signature: every notification in ``value[]`` holds the
``clientState`` the subscription was created with ("It must match the value originally submitted with the
subscription creation request"). Signing here is Graph putting the subscription's clientState in each item:
items written with the doc's example value (``secretClientValue``) get the given secret; an item of another
subscription (another clientState) is left as it is.
Doc: https://learn.microsoft.com/graph/change-notifications-delivery-webhooks ("Processing the change
notification")."""

from __future__ import annotations

import json
from typing import Any

from tests.conformance.kit import Req

ID = "microsoft-graph"
SECRET = "secretClientValue"  # the doc's example clientState
WRONG_SECRET = "SecretClientState"
BODY_SIGNED = False  # clientState is a shared value, not a digest of the body
TIMESTAMPED = False
PROOF_HEADERS: list[str] = []  # the proof is in the body


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    if secret == SECRET:
        return req
    body = json.loads(req.body)
    for item in body.get("value", []):
        if item.get("clientState") == SECRET:
            item["clientState"] = secret
    return Req(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), req.headers, req.method, req.url)
