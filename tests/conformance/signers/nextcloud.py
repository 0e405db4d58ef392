"""Nextcloud ``webhook_listeners`` (NC 30+): no signature. A webhook registered with ``authMethod: "header"``
sends the headers of its ``authData`` as they are, merged into the request's headers; the body is PHP's
``json_encode()`` of the event, with no Content-Type.

Docs: https://docs.nextcloud.com/server/latest/admin_manual/webhook_listeners/index.html (OCS API "Register a new
webhook": httpMethod, uri, event, eventFilter, headers, authMethod none|header, authData; payload envelope
{event: {class, …}, user: {uid, displayName}, time}); the sender, nextcloud/server
apps/webhook_listeners/lib/BackgroundJobs/WebhookCall.php (``'body' => json_encode($data)``, auth headers merged).
"""

from __future__ import annotations

from typing import Any

from tests.conformance.kit import Req

ID = "nextcloud"
SECRET = "nc-whk-1f8b2c7d9e0a4b6c"
WRONG_SECRET = "nc-whk-1f8b2c7d9e0a4b6d"
BODY_SIGNED = False
TIMESTAMPED = False
DEFAULT_HEADER = "Authorization: Bearer <secret>"


def auth_header(settings: dict[str, Any]) -> tuple[str, str]:
    """The authData header the webhook was registered with, as "Name: value" with <secret> in the value."""
    name, _, value = (settings.get("header") or DEFAULT_HEADER).partition(":")
    return name.strip(), value.strip()


def PROOF_HEADERS(settings: dict[str, Any]) -> list[str]:
    return [auth_header(settings)[0]]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    name, value = auth_header(settings)
    return req.with_headers(**{name: value.replace("<secret>", secret)})
