"""Slack: X-Slack-Signature: v0=<hex HMAC-SHA256(signing secret, "v0:" + X-Slack-Request-Timestamp + ":" + body)>.
Doc: https://api.slack.com/authentication/verifying-requests-from-slack . Fixtures: tests/fixtures/slack/SOURCES.md."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from tests.conformance.kit import Req

ID = "slack"
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the docs' example signing secret
WRONG_SECRET = "8f742231b10e8888abcd99yyyzzz85a6"
BODY_SIGNED = True
TIMESTAMPED = True
PROOF_HEADERS = ["X-Slack-Signature", "X-Slack-Request-Timestamp"]


def signature(secret: str, timestamp: str, body: bytes) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    ts = str(int(now))
    return req.with_headers(**{"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature(secret, ts, req.body)})
