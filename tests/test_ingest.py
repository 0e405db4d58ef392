"""POST /hooks/{source_id}: every error code, durability before 202, duplicates, handshakes (both paths)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from hub.db import tables as t
from hub.runtime import Runtime
from tests.conftest import create, make_settings, running_app
from tests.helpers import GITHUB_SECRET, github_issue, github_request

pytestmark = pytest.mark.usefixtures("fast_ingest")


async def _source(client: httpx.AsyncClient, connector: str = "github", secret: str = GITHUB_SECRET) -> str:
    src = await create(client, "/api/v1/sources", {"connector": connector, "name": "s", "secret": secret})
    return str(src["id"])


async def test_unknown_source_is_404(client: httpx.AsyncClient) -> None:
    body, headers = github_request(github_issue(1))
    resp = await client.post("/hooks/src_nope", content=body, headers=headers)
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "unknown_source"


async def test_missing_and_bad_signature_are_401(client: httpx.AsyncClient, runtime: Runtime) -> None:
    sid = await _source(client)
    body, headers = github_request(github_issue(1))
    missing = {k: v for k, v in headers.items() if k != "X-Hub-Signature-256"}
    resp = await client.post(f"/hooks/{sid}", content=body, headers=missing)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "missing_signature")
    resp = await client.post(f"/hooks/{sid}", content=body + b" ", headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")
    _, wrong = github_request(github_issue(1), secret="another secret")
    resp = await client.post(f"/hooks/{sid}", content=body, headers=wrong)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")
    async with runtime.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.events)) == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[" * 200_000 + b"]" * 200_000, b'{"a": "\xff\xfe"}'],
    ids=["broken", "nested-200k-deep", "not-utf8"],
)
async def test_unparseable_body_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    sid = await _source(client)
    _, headers = github_request({})
    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert (resp.status_code, resp.json()["error"]["code"]) == (400, "unparseable_body")


async def test_body_over_limit_is_413(tmp_path: Path, fast_ingest: bool) -> None:
    async with running_app(make_settings(tmp_path, max_body_bytes=1024), fast_ingest) as (_, c):
        sid = await _source(c)
        body, headers = github_request({**github_issue(1), "padding": "x" * 2000})
        resp = await c.post(f"/hooks/{sid}", content=body, headers=headers)
        assert (resp.status_code, resp.json()["error"]["code"]) == (413, "body_too_large")
        small, headers = github_request(github_issue(2))
        assert (await c.post(f"/hooks/{sid}", content=small, headers=headers)).status_code == 202


async def test_event_is_committed_before_202(client: httpx.AsyncClient, runtime: Runtime) -> None:
    sid = await _source(client)
    body, headers = github_request(github_issue(7), delivery="delivery-7")
    resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert resp.status_code == 202
    event_id = resp.json()["event_id"]
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.events).where(t.events.c.id == event_id))).mappings().one()
    assert row["type"] == "issues.opened"
    assert row["dedup_key"] == "delivery-7"
    assert row["subject"] == "octocat/Hello-World#7"
    assert row["body"] == body  # the exact bytes, for replay and audit


async def test_repeated_delivery_id_answers_first_event_and_is_not_delivered_twice(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    sid = await _source(client)
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "box"})
    await create(client, "/api/v1/routes", {"source_id": sid, "target_id": tgt["id"], "events": ["*"]})
    body, headers = github_request(github_issue(3), delivery="same-guid")
    first = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    again = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json() == {"event_id": first.json()["event_id"], "duplicate": True}
    async with runtime.engine.connect() as conn:
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.events)) == 1
        assert await conn.scalar(sa.select(sa.func.count()).select_from(t.deliveries)) == 1


async def test_ping_is_accepted_stored_and_not_routed(client: httpx.AsyncClient, runtime: Runtime) -> None:
    sid = await _source(client)
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "box"})
    await create(client, "/api/v1/routes", {"source_id": sid, "target_id": tgt["id"], "events": ["*"]})
    body, headers = github_request({"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert resp.status_code == 202
    ev = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert ev["type"] == "ping"
    assert ev["status"] == "ignored"
    assert ev["deliveries"] == []


async def test_form_encoded_github_payload(client: httpx.AsyncClient) -> None:
    from urllib.parse import urlencode

    sid = await _source(client)
    body = urlencode({"payload": json.dumps(github_issue(9))}).encode()
    _, headers = github_request({})
    import hashlib
    import hmac

    headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(GITHUB_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert resp.status_code == 202
    ev = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert ev["type"] == "issues.opened"


async def test_standard_webhooks_source_end_to_end(client: httpx.AsyncClient) -> None:
    import time

    from standardwebhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sid = await _source(client, "standard-webhooks", secret)
    body = json.dumps({"type": "invoice.paid", "data": {"id": "inv_1"}})
    from datetime import UTC, datetime

    now = datetime.fromtimestamp(int(time.time()), UTC)
    sig = Webhook(secret).sign("msg_1", now, body)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": sig}
    resp = await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text
    ev = (await client.get(f"/api/v1/events/{resp.json()['event_id']}")).json()
    assert (ev["type"], ev["dedup_key"], ev["subject"]) == ("invoice.paid", "msg_1", "inv_1")
    stale = {**headers, "webhook-id": "msg_2", "webhook-timestamp": str(int(now.timestamp()) - 3600)}
    resp = await client.post(f"/hooks/{sid}", content=body, headers=stale)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "stale_timestamp")


@pytest.mark.parametrize("secret_header", ["X-Hub-Signature-256"])
async def test_secret_never_stored_in_headers_or_logs(
    client: httpx.AsyncClient, runtime: Runtime, caplog: pytest.LogCaptureFixture, secret_header: str
) -> None:
    sid = await _source(client)
    body, headers = github_request(github_issue(1), secret="wrong")
    await client.post(f"/hooks/{sid}", content=body, headers=headers)
    assert GITHUB_SECRET not in caplog.text
    async with runtime.engine.connect() as conn:
        stored = await conn.scalar(sa.select(t.sources.c.secret_enc).where(t.sources.c.id == sid))
    assert stored and GITHUB_SECRET not in stored


async def test_secret_rotation_accepts_both_secrets_during_the_overlap_only(client: httpx.AsyncClient) -> None:
    sid = await _source(client)

    async def status(secret: str) -> int:
        body, headers = github_request(github_issue(1), secret=secret)
        return (await client.post(f"/hooks/{sid}", content=body, headers=headers)).status_code

    rotated = await client.patch(f"/api/v1/sources/{sid}", json={"secret": "second secret"})
    assert rotated.status_code == 200 and "second secret" not in rotated.text
    assert rotated.json()["previous_secret_valid_until"] is not None  # 24 h by default
    assert (await status(GITHUB_SECRET), await status("second secret"), await status("a guess")) == (202, 202, 401)

    ended = await client.patch(f"/api/v1/sources/{sid}", json={"previous_secret_valid_for": 0})
    assert ended.json()["previous_secret_valid_until"] is None
    assert (await status(GITHUB_SECRET), await status("second secret")) == (401, 202)

    await client.patch(f"/api/v1/sources/{sid}", json={"secret": "third secret", "previous_secret_valid_for": 0.3})
    assert (await status("second secret"), await status("third secret")) == (202, 202)
    await asyncio.sleep(0.35)
    assert (await status("second secret"), await status("third secret")) == (401, 202)
    await client.patch(f"/api/v1/sources/{sid}", json={"secret": "fourth secret", "previous_secret_valid_for": 0})
    assert (await status("third secret"), await status("fourth secret")) == (401, 202)  # no overlap asked
