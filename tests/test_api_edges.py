"""Management API under odd but possible use: a clear 4xx with its code, never a 500 or a silent no-op."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.config import ConfigError, Settings, load_settings
from hub.runtime import Runtime
from tests.conftest import create, create_pipeline, fire, make_settings, running_app, wait_for
from tests.receiver import Receiver


async def test_a_disabled_target_holds_its_deliveries_until_enabled(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": receiver.url, "enabled": False})
    event_id = await fire(client, ids["source_id"])
    await asyncio.sleep(0.6)  # three worker polls
    assert receiver.requests == []
    delivery = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]
    assert delivery["status"] == "pending" and delivery["attempts"] == 0
    assert (await client.patch(f"/api/v1/targets/{ids['target_id']}", json={"enabled": True})).status_code == 200

    async def delivered() -> bool:
        return len(receiver.requests) == 1

    await wait_for(delivered, timeout=5)


async def test_nul_and_lone_surrogates_are_refused_before_anything_is_written(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, str, Any]] = [
        ("POST", "/api/v1/sources", b'{"connector": "github", "name": "x\\u0000y", "secret": "s"}'),
        (
            "POST",
            "/api/v1/sources",
            b'{"connector": "github", "name": "x", "secret": "s", "settings": {"k": "\\ud800"}}',
        ),
        ("GET", "/api/v1/events?type=a%00b", None),
        ("GET", "/api/v1/sources/a%00b", None),
    ]
    for method, path, body in cases:
        resp = await client.request(method, path, content=body, headers={"Content-Type": "application/json"})
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_text"), path
    assert (await client.get("/api/v1/sources")).json() == []
    deep = await client.post("/api/v1/sources", content=b"[" * 50_000 + b"]" * 50_000)
    assert (deep.status_code, deep.json()["error"]["code"]) == (422, "invalid_request")  # not a 500
    ok = await client.post("/api/v1/sources", json={"connector": "github", "name": "émoji 🚀", "secret": "s"})
    assert ok.status_code == 201  # real non-ASCII text, surrogate pairs included, is fine


async def test_the_failed_filter_matches_what_the_event_shows(client: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.script = [(400, {})]  # the first target's delivery dies at once
    ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    slow = await create(
        client, "/api/v1/targets", {"kind": "webhook", "name": "later", "url": receiver.url, "enabled": False}
    )
    await create(client, "/api/v1/routes", {"source_id": ids["source_id"], "target_id": slow["id"], "events": ["*"]})
    event_id = await fire(client, ids["source_id"])

    async def one_dead() -> bool:
        deliveries = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"]
        return any(d["status"] == "dead" for d in deliveries)

    await wait_for(one_dead)
    assert (await client.get(f"/api/v1/events/{event_id}")).json()["status"] == "pending"
    listed = {
        s: [e["id"] for e in (await client.get("/api/v1/events", params={"status": s})).json()]
        for s in ("pending", "failed")
    }
    assert listed == {"pending": [event_id], "failed": []}


async def test_a_time_without_zone_is_utc(client: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.script = [(400, {})]
    ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    await fire(client, ids["source_id"])

    async def dead() -> bool:
        return len((await client.get("/api/v1/dead-letters")).json()) == 1

    await wait_for(dead)
    old_tz = os.environ.get("TZ")
    os.environ["TZ"] = "America/Los_Angeles"
    time.tzset()
    try:
        an_hour_ago = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 3600))
        naive = (await client.get("/api/v1/dead-letters", params={"since": an_hour_ago})).json()
        zoned = (await client.get("/api/v1/dead-letters", params={"since": an_hour_ago + "Z"})).json()
    finally:
        if old_tz is None:
            os.environ.pop("TZ")
        else:
            os.environ["TZ"] = old_tz
        time.tzset()
    assert len(naive) == len(zoned) == 1


async def test_a_delivery_whose_route_is_gone_is_not_retried(client: httpx.AsyncClient, receiver: Receiver) -> None:
    receiver.script = [(400, {})]
    ids = await create_pipeline(client, {"kind": "webhook", "name": "rx", "url": receiver.url})
    event_id = await fire(client, ids["source_id"])

    async def dead() -> bool:
        return len((await client.get("/api/v1/dead-letters")).json()) == 1

    await wait_for(dead)
    delivery_id = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]["id"]
    assert (await client.delete(f"/api/v1/routes/{ids['route_id']}")).status_code == 204
    resp = await client.post(f"/api/v1/deliveries/{delivery_id}/retry")
    assert (resp.status_code, resp.json()["error"]["message"]) == (409, "its route is gone")


async def test_a_bulk_retry_that_cannot_be_queued_is_503_and_failed(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    async def queue_down(function: str, job_id: str) -> None:
        raise ConnectionError("redis is down")

    runtime.background = queue_down
    resp = await client.post("/api/v1/deliveries/bulk-retry", json={})
    assert (resp.status_code, resp.json()["error"]["code"]) == (503, "queue_unavailable")
    jobs = (await client.get("/api/v1/jobs")).json()
    assert [j["status"] for j in jobs] == ["failed"]


async def test_custom_connectors_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    spec = {"id": "acme", "title": "Acme", "signature": {"header": "X-Sig"}, "event_type": {"field": "event"}}
    async with running_app(settings) as (_, client):
        await create(client, "/api/v1/connectors", spec)
    async with running_app(settings) as (_, client):  # a new process: nothing loaded yet
        assert (await client.get("/api/v1/connectors/acme")).status_code == 200
        await create(client, "/api/v1/sources", {"connector": "acme", "name": "a", "secret": "s"})


async def test_a_changed_secret_key_stops_the_start_naming_the_setting(tmp_path: Path) -> None:
    async with running_app(make_settings(tmp_path, secret_key="the-first-secret-key-0123")) as (_, client):
        await create(client, "/api/v1/sources", {"connector": "github", "name": "a", "secret": "s"})
    with pytest.raises(ConfigError, match="HUB_SECRET_KEY"):
        async with running_app(make_settings(tmp_path, secret_key="another-secret-key-456789")):
            pass


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HUB_REDIS_URL": "redis://127.0.0.1:6379/0"}, "HUB_DATABASE_URL"),
        ({"HUB_CONNECTORS_DIR": "/nonexistent/dir"}, "HUB_CONNECTORS_DIR"),
        ({"HUB_BREAKER_COOLDOWN": "inf"}, "HUB_BREAKER_COOLDOWN"),
        ({"HUB_DATA_DIR": "/etc/passwd"}, "HUB_DATA_DIR"),
    ],
)
def test_settings_that_cannot_work_fail_naming_the_setting(
    env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_settings_defaults_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HUB_DATA_DIR", str(tmp_path))
    assert isinstance(load_settings(), Settings)


async def test_a_malformed_answer_is_retried_and_the_secret_url_never_shows(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/services/T000/B000/SECRETPATH?token=SECRETQ"
    try:
        ids = await create_pipeline(client, {"kind": "slack", "name": "s", "url": url, "retry_schedule": [60]})
        event_id = await fire(client, ids["source_id"])

        async def attempted() -> bool:
            return (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]["attempts"] == 1

        await wait_for(attempted)
    finally:
        server.close()
    shown = (await client.get(f"/api/v1/events/{event_id}")).text + caplog.text
    delivery = (await client.get(f"/api/v1/events/{event_id}")).json()["deliveries"][0]
    assert delivery["status"] == "pending" and delivery["last_error"]  # retried, with a cause
    assert "SECRETPATH" not in shown and "SECRETQ" not in shown


async def test_an_unmigrated_database_says_run_hub_migrate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hub migrate"):
        async with running_app(make_settings(tmp_path, auto_migrate=False)):
            pass
