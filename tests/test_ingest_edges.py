"""Ingest under odd but possible input: every answer has its code, nothing hangs, nothing leaks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from hub.config_cache import RouteInfo
from hub.connectors.catalogue import SpecError, load_spec_file
from hub.connectors.spec import SignatureSpec
from hub.ingest.batcher import IngestBatcher
from hub.ingest.handoff import Lease
from hub.ingest.store import NewEvent, StoredEvent
from hub.runtime import Runtime
from tests.conftest import create

pytestmark = pytest.mark.usefixtures("fast_ingest")
SECRET = "generic secret"


def _signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


async def _generic_source(client: httpx.AsyncClient) -> str:
    src = await create(client, "/api/v1/sources", {"connector": "generic-hmac", "name": "g", "secret": SECRET})
    return str(src["id"])


@pytest.mark.parametrize("length", [299, 300, 301, 302])
async def test_long_delivery_ids_that_share_a_prefix_stay_two_events(client: httpx.AsyncClient, length: int) -> None:
    sid = await _generic_source(client)
    ids = []
    for n in (1, 2):
        body = json.dumps({"type": "x", "n": n}).encode()
        headers = {**_signed(body), "X-Delivery-Id": "x" * (length - 1) + str(n)}
        resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
        assert resp.status_code == 202, resp.text
        ids.append(resp.json()["event_id"])
    again = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert (again.status_code, again.json()["event_id"]) == (200, ids[1])  # a real repeat is still one


async def test_nul_and_lone_surrogates_are_stored_not_refused_forever(client: httpx.AsyncClient) -> None:
    """JSON may carry \\u0000 and \\ud800; a database column may not: hub stores a cleaned type and key."""
    sid = await _generic_source(client)
    body = b'{"type": "deal\\u0000.won\\ud800", "id": "evt\\u00001\\udc00"}'
    resp = await client.post(f"/hooks/{sid}", content=body, headers=_signed(body))
    assert resp.status_code == 202, resp.text
    event = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert event["type"] == "deal.won?"
    assert (await client.post(f"/hooks/{sid}", content=body, headers=_signed(body))).status_code == 200


async def test_huge_integers_are_400_not_500(client: httpx.AsyncClient) -> None:
    sid = await _generic_source(client)
    body = b'{"type": "x", "n": ' + b"1" * 5000 + b"}"
    resp = await client.post(f"/hooks/{sid}", content=body, headers=_signed(body))
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "unparseable_body")


async def test_a_token_in_a_source_specific_header_is_never_stored(client: httpx.AsyncClient) -> None:
    spec = {
        "id": "tokened",
        "title": "Tokened",
        "signature": {"scheme": "token", "header": "X-Token", "configurable": ["header"]},
        "event_type": {"field": "type"},
    }
    await create(client, "/api/v1/connectors", spec)
    src = await create(
        client,
        "/api/v1/sources",
        {"connector": "tokened", "name": "t", "secret": "pässwörd", "settings": {"signature": {"header": "X-Own"}}},
    )
    body = b'{"type": "x"}'
    # the sender puts the UTF-8 bytes of the secret in the header: they must match
    resp = await client.post(f"/hooks/{src['id']}", content=body, headers={"X-Own": "pässwörd".encode()})
    assert resp.status_code == 202, resp.text
    event = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert "x-own" not in event["headers"] and "pässwörd" not in json.dumps(event)


async def test_get_on_a_source_without_handshake_says_what_is_allowed(client: httpx.AsyncClient) -> None:
    sid = await _generic_source(client)
    resp = await client.get(f"/hooks/{sid}")
    assert resp.status_code == 405 and resp.headers["allow"] == "GET, HEAD, POST, OPTIONS"


def test_spec_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_bytes(b"id: x\xff\n")
    with pytest.raises(SpecError, match=r"x\.yaml"):
        load_spec_file(bad)
    with pytest.raises(ValueError, match="separator"):
        SignatureSpec(header="X-Sig", multiple=True, separator="")


async def test_stopping_answers_the_requests_whose_batch_is_being_committed(runtime: Runtime) -> None:
    """A stop in the middle of a commit lets it finish and answers its requests: the events are stored."""
    batcher = IngestBatcher(runtime.engine)
    entered = asyncio.Event()

    async def slow_store(
        batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None
    ) -> list[StoredEvent]:
        entered.set()
        await asyncio.sleep(0.3)
        return [StoredEvent(f"evt_{i}", False, []) for i in range(len(batch))]

    batcher._store = slow_store  # type: ignore[method-assign]
    batcher.start()
    ev = NewEvent("src", "github", "x", None, None, {}, b"{}", 0.0, "unrouted")
    request = asyncio.create_task(batcher.store(ev, []))
    await entered.wait()
    await batcher.stop()
    assert (await asyncio.wait_for(request, 1)).event_id == "evt_0"


async def _batch_of(batcher: IngestBatcher, n: int) -> list[StoredEvent | BaseException]:
    """n webhooks arriving together: they form one batch."""
    batcher.start()
    evs = [NewEvent("src", "github", f"t{i}", None, None, {}, b"{}", 0.0, "unrouted") for i in range(n)]
    out = await asyncio.gather(*(batcher.store(ev, []) for ev in evs), return_exceptions=True)
    await batcher.stop()
    return out


async def test_one_bad_event_does_not_fail_its_batch(runtime: Runtime) -> None:
    batcher = IngestBatcher(runtime.engine)

    async def store(batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None) -> list[StoredEvent]:
        if any(ev.type == "t3" for ev, _ in batch):
            raise ValueError("bad event")
        return [StoredEvent(ev.type, False, []) for ev, _ in batch]

    batcher._store = store  # type: ignore[method-assign]
    out = await _batch_of(batcher, 8)
    assert [o.event_id if isinstance(o, StoredEvent) else "error" for o in out] == [
        "t0",
        "t1",
        "t2",
        "error",
        "t4",
        "t5",
        "t6",
        "t7",
    ]


async def test_a_failing_database_answers_the_whole_batch_at_once(runtime: Runtime) -> None:
    batcher = IngestBatcher(runtime.engine)
    calls = 0

    async def store(batch: Sequence[tuple[NewEvent, Sequence[RouteInfo]]], lease: Lease | None) -> list[StoredEvent]:
        nonlocal calls
        calls += 1
        raise OSError("connection refused")

    batcher._store = store  # type: ignore[method-assign]
    out = await _batch_of(batcher, 50)
    assert all(isinstance(o, OSError) for o in out)
    assert calls <= 5  # the batch, then a few events alone: not fifty timeouts in a row
