"""Google Drive push notifications: no signature; the channel ``token`` the app set in its ``files.watch`` /
``changes.watch`` request comes back verbatim in ``X-Goog-Channel-Token`` ("a token ... that you can use to
verify the notification source"). The body is empty.
Doc: https://developers.google.com/workspace/drive/api/guides/push ("Optional properties", "Headers")."""

from __future__ import annotations

from typing import Any

from tests.conformance.kit import Req

ID = "google-drive"
SECRET = "3a98f1a2b3c4d5e6f7"  # the doc's example channel token
WRONG_SECRET = "target=myApp-myFilesChannelDest"
BODY_SIGNED = False
TIMESTAMPED = False
PROOF_HEADERS = ["X-Goog-Channel-Token"]


def sign(req: Req, secret: str, settings: dict[str, Any], now: float) -> Req:
    return req.with_headers(**{"X-Goog-Channel-Token": secret})
