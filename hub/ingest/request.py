"""One way to see an incoming webhook, for the ASGI fast path and the documented FastAPI route alike."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from hub.connectors.connector import Reply
from hub.connectors.verify import RawRequest
from hub.errors import HubError


def raw_request(scope: Mapping[str, Any], body: bytes, public_url: str) -> tuple[RawRequest, str]:
    """The request as connectors see it, and the base URL it came to. Its ``url`` (signed by Trello and
    HubSpot) starts with HUB_PUBLIC_URL when set: behind a proxy the Host header is not what was registered."""
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # ASGI names are lower-case
    query = scope.get("query_string", b"").decode("latin-1")
    base = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}{scope.get('root_path', '')}"
    url = f"{(public_url or base).rstrip('/')}{scope['path']}"
    if query:
        url += "?" + query
    raw = RawRequest(
        body=body,
        headers=headers,
        method=str(scope.get("method", "POST")).upper(),
        url=url,
        query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
    )
    return raw, base


def error_reply(exc: HubError) -> Reply:
    return Reply.json(exc.status, exc.body(), tuple((exc.headers or {}).items()))
