"""Dropbox webhooks as https://www.dropbox.com/developers/reference/webhooks describes them: the verification
request (``GET ?challenge=``, echoed as ``text/plain`` with ``X-Content-Type-Options: nosniff``), the
``X-Dropbox-Signature`` HMAC, and notifications that name accounts, not files — so every notification for an
account looks the same and a repeat is one only within a short window."""

from __future__ import annotations

import hashlib
import hmac
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from hub.ingest import core
from tests.conftest import create

SECRET = "dbx-app-secret-0123456789"
BODY = json.dumps(
    {"list_folder": {"accounts": ["dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"]}, "delta": {"users": [12345678]}}
).encode()


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Dropbox-Signature": sig, "Content-Type": "application/json"}


async def dropbox_source(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "/api/v1/sources", {"connector": "dropbox", "name": "dbx", "secret": SECRET})


@pytest.mark.parametrize("challenge", ["abc123", "a b+c/<script>&é"])
async def test_the_verification_request_is_echoed_as_plain_text(
    client: httpx.AsyncClient, fast_ingest: bool, challenge: str
) -> None:
    """Doc, "The verification request": a GET with a ``challenge`` parameter; "echo back the challenge parameter"
    with 'Content-Type: text/plain' and 'X-Content-Type-Options: nosniff' (reflected-XSS guard); answered
    before any signature (the GET has none)."""
    src = await dropbox_source(client)
    resp = await client.get(f"/hooks/{src['id']}", params={"challenge": challenge})
    assert (resp.status_code, resp.text) == (200, challenge)
    assert resp.headers["content-type"].split(";")[0] == "text/plain"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []


async def test_a_signed_notification_is_stored_and_a_bad_signature_is_401(client: httpx.AsyncClient) -> None:
    src = await dropbox_source(client)
    bad = await client.post(f"/hooks/{src['id']}", content=BODY, headers=signed(BODY, "not-the-app-secret"))
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "bad_signature")
    unsigned = await client.post(f"/hooks/{src['id']}", content=BODY, headers={"Content-Type": "application/json"})
    assert (unsigned.status_code, unsigned.json()["error"]["code"]) == (401, "missing_signature")
    ok = await client.post(f"/hooks/{src['id']}", content=BODY, headers=signed(BODY))
    # "Each request that results in a non-200 response code or times out will be re-attempted": 200, not 202
    assert ok.status_code == 200, ok.text
    assert ok.json()["event_id"]
    [event] = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert (event["type"], event["subject"]) == ("list_folder", "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc")


async def test_the_same_body_is_a_repeat_within_60_s_and_a_new_change_after(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropbox retries a failed notification "over the course of about ten minutes" with backoff, and a later
    change for the same account sends the very same body: within 60 s it is a repeat, after that a change."""
    clock = SimpleNamespace(now=1_800_000_000.0)
    monkeypatch.setattr(core, "time", SimpleNamespace(time=lambda: clock.now))
    src = await dropbox_source(client)
    first = await client.post(f"/hooks/{src['id']}", content=BODY, headers=signed(BODY))
    clock.now += 30
    retry = await client.post(f"/hooks/{src['id']}", content=BODY, headers=signed(BODY))
    clock.now += 61
    later = await client.post(f"/hooks/{src['id']}", content=BODY, headers=signed(BODY))
    assert [first.status_code, retry.status_code, later.status_code] == [200, 200, 200]
    assert retry.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    assert "duplicate" not in later.json()
    assert later.json()["event_id"] != first.json()["event_id"]
    assert len((await client.get("/api/v1/events", params={"source_id": src["id"]})).json()) == 2
