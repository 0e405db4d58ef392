"""Generic HMAC: an HMAC of the raw body; header, algorithm, encoding and prefix from the source's
settings (hub's own documented contract for senders without a connector of their own)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "generic-hmac"
SECRET = "gen-3rIc s3cret"
WRONG_SECRET = "gen-3rIc s3cret!"
BODY_SIGNED = True
TIMESTAMPED = False


def PROOF_HEADERS(settings: dict[str, Any]) -> list[str]:
    return [str((settings.get("signature") or {}).get("header") or "X-Signature")]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    cfg = {"header": "X-Signature", "algorithm": "sha256", "encoding": "hex", "prefix": ""}
    cfg.update(settings.get("signature") or {})
    digest = hmac.new(secret.encode(), req.body, getattr(hashlib, cfg["algorithm"])).digest()
    encoded = digest.hex() if cfg["encoding"] == "hex" else base64.b64encode(digest).decode()
    return req.with_headers(**{cfg["header"]: cfg["prefix"] + encoded})
