"""Fixtures of the storage tests: the provider stand-ins, an app whose sources point at them, helpers to
connect a source (the whole consent flow), send notifications and read what was stored."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from hub.config import Settings
from tests.conftest import create, make_settings, wait_for
from tests.storage.standins import DROPBOX_ACCOUNT, StandIns, serve_standins

PUBLIC_URL = "https://hub.example.com"
DROPBOX_SECRET = "dbx-app-secret-0123456789"
GRAPH_SECRET = "graph-client-state-0123456789"
DRIVE_SECRET = "drive-channel-token-0123456789"
SECRETS = {"dropbox": DROPBOX_SECRET, "microsoft-graph": GRAPH_SECRET, "google-drive": DRIVE_SECRET}


@pytest.fixture
async def standins() -> AsyncIterator[StandIns]:
    async with serve_standins() as s:
        yield s


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # the storage pass runs once at start; the tests drive fetches through notifications and calls
    return make_settings(tmp_path, public_url=PUBLIC_URL, storage_interval=3600.0)


async def storage_source(
    client: httpx.AsyncClient, standins: StandIns, connector: str, **settings: Any
) -> dict[str, Any]:
    body = {
        "connector": connector,
        "name": connector,
        "secret": SECRETS[connector],
        "settings": {**standins.settings(connector), **settings},
    }
    return await create(client, "/api/v1/sources", body)


async def connect(client: httpx.AsyncClient, source_id: str) -> dict[str, Any]:
    """The consent as an admin's browser makes it: start → provider's authorize → hub's callback."""
    start = await client.get(f"/api/v1/sources/{source_id}/oauth/start")
    assert start.status_code == 302, start.text
    async with httpx.AsyncClient() as browser:
        consent = await browser.get(start.headers["location"])
    assert consent.status_code == 302, consent.text
    back = urlsplit(consent.headers["location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == f"{PUBLIC_URL}/oauth/callback"
    params = {k: v[0] for k, v in parse_qs(back.query).items()}
    done = await client.get("/oauth/callback", params=params)
    assert done.status_code == 200, done.text
    return dict(done.json())


async def inbox_route(client: httpx.AsyncClient, source_id: str, events: list[str] | None = None) -> str:
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "inbox"})
    await create(
        client,
        "/api/v1/routes",
        {"source_id": source_id, "target_id": inbox["id"], "events": events or ["file.*", "folder.*"]},
    )
    return str(inbox["id"])


def dropbox_notification(accounts: list[str] | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"list_folder": {"accounts": accounts or [DROPBOX_ACCOUNT]}, "delta": {"users": [12345678]}})
    sig = hmac.new(DROPBOX_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    return body.encode(), {"X-Dropbox-Signature": sig, "Content-Type": "application/json"}


async def notify_dropbox(client: httpx.AsyncClient, source_id: str, accounts: list[str] | None = None) -> str:
    body, headers = dropbox_notification(accounts)
    resp = await client.post(f"/hooks/{source_id}", content=body, headers=headers)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["event_id"])


def graph_notification(lifecycle: str | None = None, subscription: str = "sub-1") -> bytes:
    item: dict[str, Any] = {
        "subscriptionId": subscription,
        "subscriptionExpirationDateTime": "2030-01-01T00:00:00Z",
        "clientState": GRAPH_SECRET,
        "tenantId": "tenant-1",
    }
    if lifecycle:
        item["lifecycleEvent"] = lifecycle
    else:
        item.update(changeType="updated", resource="me/drive/root", resourceData={"id": "root"})
    return json.dumps({"value": [item]}).encode()


async def notify_graph(
    client: httpx.AsyncClient, source_id: str, lifecycle: str | None = None, subscription: str = "sub-1"
) -> httpx.Response:
    resp = await client.post(
        f"/hooks/{source_id}",
        content=graph_notification(lifecycle, subscription),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code in (200, 202), resp.text  # 200: a repeat within the dedup window (still fetched)
    return resp


async def notify_drive(client: httpx.AsyncClient, source_id: str, number: int, state: str = "change") -> None:
    headers = {
        "X-Goog-Channel-ID": "channel-1",
        "X-Goog-Channel-Token": DRIVE_SECRET,
        "X-Goog-Channel-Expiration": "Tue, 19 Nov 2030 01:13:52 GMT",
        "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-URI": "https://www.googleapis.com/drive/v3/changes?alt=json&pageToken=1",
        "X-Goog-Resource-State": state,
        "X-Goog-Message-Number": str(number),
    }
    resp = await client.post(f"/hooks/{source_id}", content=b"", headers=headers)
    assert resp.status_code == 202, resp.text


async def events_of(client: httpx.AsyncClient, source_id: str, prefix: str = "") -> list[dict[str, Any]]:
    listed = (await client.get("/api/v1/events", params={"source_id": source_id, "limit": 500})).json()
    return [e for e in reversed(listed) if e["type"].startswith(prefix)]


async def fetched(client: httpx.AsyncClient, source_id: str) -> list[dict[str, Any]]:
    """The fetched events of a source, oldest first, with their payloads."""
    out = []
    for ev in await events_of(client, source_id):
        if ev["type"].startswith(("file.", "folder.")):
            out.append((await client.get(f"/api/v1/events/{ev['id']}")).json())
    return out


async def storage_state(client: httpx.AsyncClient, source_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/sources/{source_id}/storage")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


async def settled(client: httpx.AsyncClient, source_id: str) -> None:
    """Wait until no fetch of the source is pending."""

    async def idle() -> bool:
        state = await storage_state(client, source_id)
        return bool(state["feeds"]) and not any(f["pending"] for f in state["feeds"])

    await wait_for(idle)
