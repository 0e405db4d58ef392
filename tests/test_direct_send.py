"""Plain JSON sends skip the httpx layer (hub/targets/direct.py): over a real socket they must send the
same request, read the same capped answer, scrub the same secrets and name failures the same way."""

from __future__ import annotations

import json
import socket

import httpx

from hub.mapping.post import Post
from hub.runtime import outbound_transport
from hub.targets.base import MAX_ANSWER_BYTES, DeliveryContext, OutboundRequest, SendResult
from hub.targets.egress import EgressPolicy
from hub.targets.http import send_http
from hub.targets.registry import get_target
from tests.receiver import Received, Receiver, serve_receiver

POST = Post(title="Deal won", body="**Acme** renewal", event_id="evt_1", source_id="src_1")
PATH_TOKEN, BEARER = "wh-path-4f2a9c", "tok-bearer-8d1e55"


def _echo(request: Received) -> tuple[int, dict[str, str], bytes]:
    """A target that quotes the request back: its URL and headers, secrets included."""
    quoted = {"path": request.path, "query": request.query, "headers": request.headers}
    return 500, {"content-type": "application/json"}, json.dumps(quoted).encode()


async def _deliver(receiver: Receiver, direct: bool, timeout: float = 5.0) -> tuple[SendResult, Received]:
    target = get_target("webhook")
    assert target is not None
    config = target.Config.model_validate(
        {"url": f"{receiver.base}/in/{PATH_TOKEN}?token={PATH_TOKEN}", "bearer_token": BEARER}
    )
    transport = outbound_transport(4, EgressPolicy())
    async with httpx.AsyncClient(transport=transport) as client:
        ctx = DeliveryContext("dlv_1", "evt_1", "tgt_1", client, timeout, direct=transport if direct else None)
        result = await target.deliver(POST, config, ctx)
    return result, receiver.requests[-1]


async def test_the_direct_send_is_the_httpx_send_on_the_wire() -> None:
    async with serve_receiver(Receiver(respond=_echo)) as receiver:
        via_httpx, sent_httpx = await _deliver(receiver, direct=False)
        direct, sent_direct = await _deliver(receiver, direct=True)
    assert sent_direct.body == sent_httpx.body and sent_direct.body["post"]["title"] == "Deal won"
    for name in ("content-type", "authorization", "idempotency-key", "user-agent"):
        assert sent_direct.headers[name] == sent_httpx.headers[name], name
    assert (direct.outcome, direct.status_code) == (via_httpx.outcome, via_httpx.status_code) == ("retry", 500)
    quoted = [json.loads(r.response_excerpt or "") for r in (direct, via_httpx)]
    assert [(q["path"], q["query"], q["headers"]["authorization"]) for q in quoted] == [("/…", "…", "***")] * 2
    kept = f"{direct.error} {direct.response_excerpt}"
    assert PATH_TOKEN not in kept and BEARER not in kept and "/in/" not in kept


async def test_a_huge_answer_is_read_up_to_the_cap() -> None:
    def huge(request: Received) -> tuple[int, dict[str, str], bytes]:
        return 200, {"content-type": "text/plain"}, b"x" * (MAX_ANSWER_BYTES * 8)

    async with serve_receiver(Receiver(respond=huge)) as receiver:
        result, _ = await _deliver(receiver, direct=True)
    assert result.outcome == "delivered"
    assert result.response_excerpt is not None and set(result.response_excerpt) == {"x"}


async def test_failures_are_named_as_on_the_httpx_path() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    request = OutboundRequest("POST", f"http://127.0.0.1:{port}/hook", {}, {"title": "t"})
    transport = outbound_transport(2, EgressPolicy())
    async with httpx.AsyncClient(transport=transport) as client:
        ctx = DeliveryContext("dlv_1", "evt_1", "tgt_1", client, 5.0, direct=transport)
        refused = await send_http(request, ctx, lambda a: SendResult("delivered"), [])
    assert refused.outcome == "retry" and (refused.error or "").startswith("connection refused"), refused.error

    async with serve_receiver(Receiver(delay=2.0)) as receiver:
        slow, _ = await _deliver(receiver, direct=True, timeout=0.3)
    assert slow.outcome == "retry" and (slow.error or "").startswith("timeout"), slow.error
