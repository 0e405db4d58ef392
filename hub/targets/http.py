"""Send a target's request and hand its answer to the target: capped reads, the egress policy, one new
token on a 401, network failures named for what they are, secrets scrubbed from what is kept."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from hub.targets.base import (
    EXCERPT_CHARS,
    Answer,
    DeliveryContext,
    OutboundRequest,
    SendResult,
    network_error,
    read_capped,
    scrub,
    user_agent,
)
from hub.targets.direct import send_direct
from hub.targets.egress import EgressBlocked, egress_refusal
from hub.targets.oauth import RenewableAuth, TokenError


def encode_json(body: Any) -> bytes:
    """The bytes sent for a JSON body (a signature over the body signs exactly these)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(errors="replace")


async def _exchange(req: OutboundRequest, ctx: DeliveryContext) -> Answer:
    headers = {"User-Agent": user_agent(), **req.headers}
    if ctx.direct is not None and req.auth is None and req.form is None:  # the hot path: no httpx layer
        headers.setdefault("Content-Type", "application/json")
        return await send_direct(ctx.direct, req.method, req.url, headers, encode_json(req.json), ctx.timeout)
    if req.form is not None:
        request = ctx.client.build_request(req.method, req.url, data=req.form, headers=headers, timeout=ctx.timeout)
    else:
        headers.setdefault("Content-Type", "application/json")
        content = encode_json(req.json)
        request = ctx.client.build_request(req.method, req.url, content=content, headers=headers, timeout=ctx.timeout)
    resp = await ctx.client.send(request, auth=req.auth or httpx.USE_CLIENT_DEFAULT, stream=True)
    try:
        return Answer(resp.status_code, resp.headers, await read_capped(resp))
    finally:
        await resp.aclose()


async def send_http(
    req: OutboundRequest, ctx: DeliveryContext, read: Callable[[Answer], SendResult], secrets: Iterable[str]
) -> SendResult:
    """Send one request and let the target judge the answer; network errors and timeouts are retried."""
    started = time.perf_counter()
    hidden = [*secrets, req.url, *(v for k, v in req.headers.items() if k.lower() == "authorization")]

    def failed(outcome: Any, error: str) -> SendResult:
        if isinstance(req.auth, RenewableAuth):
            hidden.extend(req.auth.secrets())
        latency = (time.perf_counter() - started) * 1000
        return SendResult(outcome, error=scrub(error, hidden)[:500], latency_ms=latency)

    try:
        ctx.egress.check_url(req.url)
        answer = await _exchange(req, ctx)
        if answer.status == 401 and isinstance(req.auth, RenewableAuth) and await req.auth.renew():
            answer = await _exchange(req, ctx)  # the token was refused: once more with a fresh one
    except EgressBlocked as exc:  # a configuration error: retrying would not help
        return failed("dead", str(exc))
    except TokenError as exc:
        return failed(exc.outcome, str(exc))
    except Exception as exc:  # network errors, timeouts, answers the client cannot read: retried
        if blocked := egress_refusal(exc):  # a host name that resolved to refused addresses only
            return failed("dead", str(blocked))
        return failed("retry", network_error(exc))
    result = read(answer)
    if isinstance(req.auth, RenewableAuth):
        hidden.extend(req.auth.secrets())
    result.latency_ms = (time.perf_counter() - started) * 1000
    result.response_excerpt = scrub(answer.text(), hidden)[:EXCERPT_CHARS] if answer.body else None
    result.error = scrub(result.error, hidden)[:500] if result.error else None
    return result
