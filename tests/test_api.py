"""Management API: auth and scopes, secrets write-only, validation, preview, OpenAPI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import sqlalchemy as sa

from hub.cli import openapi_document
from hub.db import tables as t
from hub.runtime import Runtime
from tests.conftest import create
from tests.helpers import github_issue

ROOT = Path(__file__).resolve().parent.parent


async def test_no_key_bad_key_and_read_key_on_write(client: httpx.AsyncClient) -> None:
    resp = await client.get("/api/v1/sources", headers={"Authorization": ""})
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "unauthorized")
    resp = await client.get("/api/v1/sources", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 401
    key = await create(client, "/api/v1/keys", {"name": "dashboard", "scope": "read"})
    reader = {"Authorization": f"Bearer {key['key']}"}
    assert (await client.get("/api/v1/sources", headers=reader)).status_code == 200
    resp = await client.post(
        "/api/v1/sources", headers=reader, json={"connector": "github", "name": "x", "secret": "s"}
    )
    assert (resp.status_code, resp.json()["error"]["code"]) == (403, "forbidden")


async def test_api_keys_are_stored_hashed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    key = await create(client, "/api/v1/keys", {"name": "k", "scope": "admin"})
    async with runtime.engine.connect() as conn:
        hashes = [r[0] for r in await conn.execute(sa.select(t.api_keys.c.key_hash))]
    assert key["key"] not in hashes
    assert all(len(h) == 64 for h in hashes)
    listed = (await client.get("/api/v1/keys")).json()
    assert all("key" not in k for k in listed)


async def test_source_secret_is_write_only_and_encrypted(client: httpx.AsyncClient, runtime: Runtime) -> None:
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "acme org", "secret": "topsecret"})
    assert "secret" not in src and src["has_secret"] is True
    assert src["ingest_url"].endswith(f"/hooks/{src['id']}")
    got = (await client.get(f"/api/v1/sources/{src['id']}")).json()
    assert "topsecret" not in json.dumps(got)
    async with runtime.engine.connect() as conn:
        stored = await conn.scalar(sa.select(t.sources.c.secret_enc))
    assert stored and "topsecret" not in stored
    patched = (await client.patch(f"/api/v1/sources/{src['id']}", json={"name": "renamed"})).json()
    assert patched["name"] == "renamed" and patched["has_secret"]
    assert (await client.delete(f"/api/v1/sources/{src['id']}")).status_code == 204
    assert (await client.get(f"/api/v1/sources/{src['id']}")).status_code == 404


async def test_invalid_source_config_is_422(client: httpx.AsyncClient) -> None:
    resp = await client.post("/api/v1/sources", json={"connector": "nope", "name": "x", "secret": "s"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_config")
    resp = await client.post("/api/v1/sources", json={"connector": "github", "name": "x"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_config")
    resp = await client.post("/api/v1/sources", json={"connector": "standard-webhooks", "name": "x", "secret": "%%%"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_config")
    resp = await client.post("/api/v1/sources", json={"name": "x"})
    assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_request")


async def test_target_secrets_never_returned(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tgt = await create(
        client,
        "/api/v1/targets",
        {"kind": "webhook", "name": "w", "url": "https://example.com/in/SECRETPATH", "bearer_token": "tok123"},
    )
    text = json.dumps(tgt) + (await client.get("/api/v1/targets")).text
    assert "tok123" not in text and "SECRETPATH" not in text
    assert tgt["secrets_set"] == ["bearer_token"]
    assert tgt["url"] == "https://example.com/…"
    async with runtime.engine.connect() as conn:
        stored = await conn.scalar(sa.select(t.targets.c.secrets_enc))
    assert stored and "tok123" not in stored
    patched = await client.patch(f"/api/v1/targets/{tgt['id']}", json={"name": "w2"})
    assert patched.json()["secrets_set"] == ["bearer_token"]


async def test_invalid_target_config_is_422(client: httpx.AsyncClient) -> None:
    for body in (
        {"kind": "carrier-pigeon", "name": "x"},
        {"kind": "webhook", "name": "x", "url": "not a url"},
        {"kind": "slack", "name": "x"},
        {"kind": "webhook", "name": "x", "url": "https://e.com", "unknown_setting": 1},
        {"kind": "webhook", "name": "x", "url": "https://user:pw@e.com/hook"},
    ):
        resp = await client.post("/api/v1/targets", json=body)
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_config"), body
    for raw in (  # numbers a schedule or a rate cannot be: refused by the schema
        b'{"kind": "webhook", "name": "x", "url": "https://e.com", "retry_schedule": [-1]}',
        b'{"kind": "webhook", "name": "x", "url": "https://e.com", "retry_schedule": [NaN]}',
        b'{"kind": "webhook", "name": "x", "url": "https://e.com", "retry_schedule": [1e12]}',
        b'{"kind": "webhook", "name": "x", "url": "https://e.com", "rate_limit_per_second": Infinity}',
    ):
        resp = await client.post("/api/v1/targets", content=raw, headers={"Content-Type": "application/json"})
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_request"), raw
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "box"})
    for null in ({"name": None}, {"enabled": None}):
        resp = await client.patch(f"/api/v1/targets/{tgt['id']}", json=null)
        assert (resp.status_code, resp.json()["error"]["details"]["field"]) == (422, next(iter(null))), null


async def test_route_validation(client: httpx.AsyncClient) -> None:
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "a", "secret": "s"})
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "b"})
    base = {"source_id": src["id"], "target_id": tgt["id"], "events": ["issues.*"]}
    for bad in (
        {"mapping": "no-such-mapping"},
        {"mapping": {"post": {"title": "{{ unclosed"}}},
        {"source_id": "src_x"},
        {"target_id": "tgt_x"},
    ):
        resp = await client.post("/api/v1/routes", json={**base, **bad})
        assert (resp.status_code, resp.json()["error"]["code"]) == (422, "invalid_config"), bad
    ok = await create(client, "/api/v1/routes", {**base, "mapping": "issues.opened"})
    assert ok["mapping"] == "issues.opened"
    assert (await client.patch(f"/api/v1/routes/{ok['id']}", json={"enabled": False})).json()["enabled"] is False
    assert len((await client.get("/api/v1/routes", params={"source_id": src["id"]})).json()) == 1


async def test_connector_catalogue(client: httpx.AsyncClient) -> None:
    items = {c["id"]: c for c in (await client.get("/api/v1/connectors")).json()}
    assert {"github", "standard-webhooks", "generic-hmac"} <= set(items)
    assert "issues.opened" in items["github"]["events"]
    assert "signature" in items["generic-hmac"]["settings_schema"]["properties"]


async def test_custom_connector_over_rest(client: httpx.AsyncClient, runtime: Runtime) -> None:
    spec = {
        "id": "acme-crm",
        "title": "Acme CRM",
        "signature": {"header": "X-Acme-Sig", "encoding": "base64"},
        "event_type": {"field": "event"},
        "dedup": {"field": "id"},
        "events": {"deal.won": "A deal was won"},
    }
    created = await create(client, "/api/v1/connectors", spec)
    assert created["custom"] is True
    src = await create(client, "/api/v1/sources", {"connector": "acme-crm", "name": "crm", "secret": "k"})
    import base64
    import hashlib
    import hmac

    body = b'{"event": "deal.won", "id": "d1"}'
    sig = base64.b64encode(hmac.new(b"k", body, hashlib.sha256).digest()).decode()
    resp = await client.post(f"/hooks/{src['id']}", content=body, headers={"X-Acme-Sig": sig})
    assert resp.status_code == 202
    bad = await client.post("/api/v1/connectors", json={"id": "BAD ID", "title": "x", "signature": {}})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_config")
    clash = await client.post("/api/v1/connectors", json={**spec, "id": "github"})
    assert clash.status_code == 409
    in_use = await client.delete("/api/v1/connectors/acme-crm")
    assert (in_use.status_code, in_use.json()["error"]["code"]) == (409, "connector_in_use")
    assert (await client.delete(f"/api/v1/sources/{src['id']}")).status_code == 204
    assert (await client.delete("/api/v1/connectors/acme-crm")).status_code == 204
    runtime.cache.invalidate()  # as another process would see it after the cache's TTL
    assert (await client.get("/api/v1/connectors/acme-crm")).status_code == 404
    assert (await client.delete("/api/v1/connectors/github")).status_code == 404  # built-ins stay


async def test_preview_returns_exact_target_body_and_delivers_nothing(client: httpx.AsyncClient) -> None:
    resp = await client.post(
        "/api/v1/preview",
        json={
            "connector": "github",
            "event_type": "issues.opened",
            "payload": github_issue(1347),
            "target_kind": "talkspirit",
            "target_settings": {"url": "https://webhook.talkspirit.com/v1/incoming/SECRET"},
        },
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    body = out["request"]["body"]
    assert body["title"] == "Issue #1347 opened: Found a bug #1347"
    assert body["thread_id"] == "github:octocat/Hello-World#1347"
    assert body["url"] == "https://github.com/octocat/Hello-World/issues/1347"
    assert body["contact"]["display_name"] == "octocat"
    assert "SECRET" not in json.dumps(out)
    assert (await client.get("/api/v1/inbox")).json() == []
    skipped = await client.post(
        "/api/v1/preview",
        json={
            "connector": "github",
            "event_type": "pull_request.closed",
            "target_kind": "slack",
            "payload": {"action": "closed", "pull_request": {"number": 1, "merged": False}},
        },
    )
    assert skipped.json()["applies"] is False
    broken = await client.post(
        "/api/v1/preview",
        json={"connector": "github", "event_type": "x", "payload": {}, "mapping": {"post": {"title": "{{ 1/0 }}"}}},
    )
    assert (broken.status_code, broken.json()["error"]["code"]) == (422, "mapping_failed")
    key = (await client.post("/api/v1/keys", json={"name": "r", "scope": "read"})).json()["key"]
    hostile = {"post": {"title": "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"}}
    inline = {"connector": "github", "event_type": "x", "payload": {}, "mapping": hostile}
    by_reader = await client.post("/api/v1/preview", json=inline, headers={"Authorization": f"Bearer {key}"})
    assert (by_reader.status_code, by_reader.json()["error"]["code"]) == (403, "forbidden")  # templates are code
    named = {**inline, "mapping": "github/issues.opened", "payload": github_issue(1)}
    assert (
        await client.post("/api/v1/preview", json=named, headers={"Authorization": f"Bearer {key}"})
    ).status_code == 200
    bomb = await client.post("/api/v1/preview", json=inline)  # an admin's template over budget
    assert (bomb.status_code, bomb.json()["error"]["code"]) == (422, "mapping_failed")
    assert "longer than" in bomb.json()["error"]["message"]


async def test_health_ready_metrics_docs(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    await client.post("/api/v1/targets", json={"kind": "inbox", "name": "box"})
    await client.post("/hooks/src_unknown", content=b"{}")
    metrics = (await client.get("/metrics")).text
    assert 'hub_events_rejected_total{cause="unknown_source"} 1.0' in metrics
    assert 'hub_deliveries_by_status{status="pending"} 0.0' in metrics
    assert "hub_queue_depth 0.0" in metrics
    assert "hub_breaker_state{target_id=" in metrics
    assert "hub_attempt_latency_seconds_bucket" in metrics
    assert (await client.get("/docs")).status_code == 200


async def test_http_errors_keep_the_error_body_and_their_headers(client: httpx.AsyncClient) -> None:
    resp = await client.request("TRACE", "/api/v1/sources")
    assert resp.status_code == 405 and resp.json()["error"]["code"] == "method_not_allowed"
    assert resp.headers["allow"] == "GET, POST, OPTIONS"  # RFC 9110: a 405 says what is allowed
    bad = await client.post("/api/v1/sources", content=b"{not json", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "malformed_body")


def test_every_error_answer_is_documented_with_the_error_body() -> None:
    doc = json.loads(openapi_document())
    retry = doc["paths"]["/api/v1/deliveries/{delivery_id}/retry"]["post"]["responses"]
    assert {"401", "403", "404", "409", "422"} <= set(retry)
    assert set(doc["paths"]["/api/v1/events"]["get"]["responses"]) == {"200", "401", "422"}
    assert "403" in doc["paths"]["/api/v1/keys"]["get"]["responses"]  # an admin-only read
    assert "403" in doc["paths"]["/api/v1/preview"]["post"]["responses"]  # a read key's inline template
    for operations in doc["paths"].values():
        for op in operations.values():
            for code, response in op["responses"].items():
                if code[0] in "45":
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


def test_committed_openapi_matches_the_app() -> None:
    committed = (ROOT / "openapi" / "openapi.json").read_text()
    assert committed == openapi_document(), "run `hub openapi` and commit openapi/openapi.json"


def test_bad_configuration_fails_fast_naming_the_setting(tmp_path: Path) -> None:
    env = {**os.environ, "HUB_MAX_BODY_BYTES": "lots", "HUB_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "hub", "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "HUB_MAX_BODY_BYTES" in proc.stderr
    env = {**os.environ, "HUB_DATABASE_URL": "mysql://x", "HUB_DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "hub", "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "HUB_DATABASE_URL" in proc.stderr


async def test_admin_page_drives_the_api(client: httpx.AsyncClient) -> None:
    page = await client.get("/admin", headers={"Authorization": ""})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]  # nothing from another host
    # the page's ES modules, followed through their imports: all served by hub, none missing
    seen: dict[str, str] = {}
    todo = re.findall(r'(?:src|href)="(/admin/assets/[^"]+)"', page.text)
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        asset = await client.get(path, headers={"Authorization": ""})
        assert asset.status_code == 200, path
        assert asset.headers["content-type"].startswith(("text/javascript", "text/css")), path
        seen[path] = asset.text
        todo += [f"/admin/assets/{name}" for name in re.findall(r'from "\./([a-z0-9-]+\.js)"', asset.text)]
    assert {"/admin/assets/main.js", "/admin/assets/console.css", "/admin/assets/dead.js"} <= set(seen)
    code = "".join(seen.values())
    for path in (
        "/api/v1/dead-letters",
        "/api/v1/deliveries/bulk-retry",
        "/breaker/reset",
        "/api/v1/events",
        "/api/v1/stats",
    ):
        assert path in code
    assert (await client.get("/admin/assets/nope.js")).status_code == 404
    assert (await client.get("/admin/assets/..%2findex.html")).status_code == 404
