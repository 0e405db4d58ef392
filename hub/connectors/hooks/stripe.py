"""Stripe: ``Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]`` over ``"<t>.<raw body>"``.

As Stripe documents it (https://docs.stripe.com/webhooks#verify-manually) and its SDK does it
(stripe-python ``stripe/_webhook.py``): the key is the whole ``whsec_…`` secret as UTF-8 (never
base64-decoded), the digest is hex HMAC-SHA256, any one of several ``v1`` entries may match (a secret
being rolled signs with both), other schemes (``v0``) are ignored, and the timestamp must be within the
tolerance (300 s; hub also refuses one as far in the future, which a genuine delivery never is).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from hub.connectors.connector import SourceContext, SpecHooks
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, wire_bytes

HEADER = "Stripe-Signature"
TOLERANCE = 300
# the Dashboard page of an object kind (test-mode objects live under /test/)
DASHBOARD = {"invoice": "invoices", "subscription": "subscriptions", "charge": "payments", "dispute": "disputes"}
DASHBOARD |= {"customer": "customers", "payment_intent": "payments", "checkout.session": "payments"}


def parse_header(value: str) -> tuple[str | None, list[str]]:
    """The first ``t`` and every ``v1`` of a Stripe-Signature header."""
    timestamp: str | None = None
    signatures: list[str] = []
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            continue
        if key == "t" and timestamp is None:
            timestamp = val.strip()
        elif key == "v1":
            signatures.append(val.strip())
    return timestamp, signatures


def signature_of(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), wire_bytes(timestamp) + b"." + body, hashlib.sha256).hexdigest()


class Hooks(SpecHooks):
    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None:
        presented = req.header(HEADER)
        if not presented:
            raise VerificationError("missing_signature", f"header {HEADER} is missing")
        if not secret:
            raise VerificationError("bad_signature", "the source has no secret to verify with")
        timestamp, signatures = parse_header(presented)
        if timestamp is None or not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise VerificationError("bad_timestamp", f"header {HEADER} has no t=<unix seconds>")
        if not signatures:
            raise VerificationError("bad_signature", f"header {HEADER} has no v1 signature")
        expected = signature_of(secret, timestamp, req.body).encode()
        if not any(hmac.compare_digest(expected, wire_bytes(s).lower()) for s in signatures):
            raise VerificationError("bad_signature", f"header {HEADER} does not match the body")
        if abs(now - int(timestamp)) > TOLERANCE:
            raise VerificationError("stale_timestamp", f"timestamp outside the {TOLERANCE}s tolerance")

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        """The spec's view, with the action (the type's last word: paid, refunded…) and, where Stripe gives
        no page of its own, the object's Dashboard page."""
        view = super().view(spec, event_type, payload)
        view["action"] = view["action"] or event_type.rpartition(".")[2]
        obj = payload.get("data", {}).get("object") if isinstance(payload, dict) else None
        if not view["object"]["url"] and isinstance(obj, dict):
            view["object"]["url"] = dashboard_url(obj, bool(payload.get("livemode")))
        return view


def dashboard_url(obj: dict[str, Any], livemode: bool) -> str:
    kind = str(obj.get("object") or "")
    ident = obj.get("payment_intent") if kind == "checkout.session" else obj.get("id")
    page = DASHBOARD.get(kind)
    if not page or not isinstance(ident, str) or not ident:
        return ""
    return f"https://dashboard.stripe.com/{'' if livemode else 'test/'}{page}/{ident}"
