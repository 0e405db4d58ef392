"""The hot path of a send: the request goes to the aiohttp session under the httpx client directly.

httpx builds a Request, Headers and URL objects and runs its cookie jar and auth flow on every send:
a third of the CPU of a delivery to a plain webhook. A request with no httpx ``Auth`` and a JSON body
needs none of that; it goes through the same aiohttp session (same connection pool, same egress
resolver, same timeouts), its failures raised as the httpx exceptions the rest of hub knows.
Requests with an ``Auth`` (OAuth2, refreshed tokens) or a form body keep the httpx client.
"""

from __future__ import annotations

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

from hub.targets.base import MAX_ANSWER_BYTES, Answer


def _session(transport: AiohttpTransport) -> aiohttp.ClientSession:
    if not isinstance(transport.client, aiohttp.ClientSession):
        transport.client = transport.get_client()
    return transport.client


async def send_direct(
    transport: AiohttpTransport, method: str, url: str, headers: dict[str, str], body: bytes, timeout: float
) -> Answer:
    """Send one request; the answer's body read up to MAX_ANSWER_BYTES."""
    limits = aiohttp.ClientTimeout(sock_connect=timeout, sock_read=timeout, connect=timeout)
    with map_aiohttp_exceptions():
        async with _session(transport).request(
            method, url, headers=headers, data=body, allow_redirects=False, timeout=limits
        ) as resp:
            content = bytearray()
            while len(content) < MAX_ANSWER_BYTES and (chunk := await resp.content.read(MAX_ANSWER_BYTES)):
                content += chunk
            return Answer(resp.status, httpx.Headers(resp.raw_headers), bytes(content[:MAX_ANSWER_BYTES]))
