"""The connector seam through the app: hooks that answer handshakes, learn secrets, split batches and
shape replies; payloads stored per event; dedup windows; secret settings; declared events on routes."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.config import Settings
from hub.config_cache import RouteInfo
from hub.connectors import connector as connector_mod
from hub.connectors.connector import Handshake, Receipt, Reply, SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, event_for, loads_json
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, verify
from hub.db import tables as t
from hub.db.engine import create_engine
from hub.db.migrate import upgrade
from hub.delivery.pg_path import PgPath, dsn_of
from hub.errors import HubError
from hub.ingest.pg_store import store_events_pg
from hub.ingest.sqlite_writer import write_batch
from hub.ingest.store import NewEvent, StoredEvent, store_events
from hub.runtime import Runtime
from tests.conftest import create, make_settings, running_app, wait_for

SECRET = "batch-secret"


class BatchHooks(SpecHooks):
    """A provider that sends {"items": [...]}, learns its secret from a header handshake, and answers XML."""

    secret_headers = frozenset({"x-learn-secret"})

    def handshake(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest) -> Handshake | None:
        offered = req.header("x-learn-secret")
        if offered is None:
            return super().handshake(spec, source, req)
        return Handshake(Reply(204, b"", "text/plain", (("X-Learn-Secret", offered),)), learn_secret=offered)

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        body = loads_json(req.body)
        if not isinstance(body, dict) or not isinstance(body.get("items"), list):
            raise ParseError("no items")
        return [event_for(spec, req, item) for item in body["items"]]

    def reply(self, spec: ConnectorSpec, receipts: Sequence[Receipt]) -> Reply:
        return Reply(200, f"<ack n='{len(receipts)}'/>".encode(), "text/xml")

    def error_reply(self, spec: ConnectorSpec, error: HubError) -> Reply | None:
        return Reply(error.status, f"<fault code='{error.code}'/>".encode(), "text/xml")


SPEC: dict[str, Any] = {
    "id": "batchy",
    "title": "Batchy",
    "hooks": "test_batchy",
    "signature": {"scheme": "hmac", "header": "X-Sig", "algorithm": "sha256", "encoding": "hex"},
    "event_type": {"field": "kind", "required": True},
    "dedup": {"field": "id"},
    "subject": ["{deal}"],
    "secret_required": False,
    "secret_settings": ["partner_key"],
    "settings_schema": {"type": "object", "required": ["region"]},
    "events": {"deal.created": "A deal was created", "deal.won": "A deal was won"},
    "views": {"deal.*": {"object": {"kind": "deal", "id": "{deal}", "title": "{name}"}, "action": "{kind}"}},
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Mappings render on the loop here: these hooks are injected into this process only (a real hooks
    module, under hub/connectors/hooks/, is imported by the render processes too)."""
    return make_settings(tmp_path, render_processes=0)


@pytest.fixture(autouse=True)
def batch_hooks() -> Any:
    connector_mod._loaded["test_batchy"] = BatchHooks()
    yield
    connector_mod._loaded.pop("test_batchy", None)


def sig(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Sig": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(), "Content-Type": "application/json"}


async def batchy_source(client: httpx.AsyncClient, secret: str | None = SECRET) -> dict[str, Any]:
    await create(client, "/api/v1/connectors", SPEC)
    body: dict[str, Any] = {"connector": "batchy", "name": "b", "settings": {"region": "eu", "partner_key": "pk-9"}}
    if secret:
        body["secret"] = secret
    return await create(client, "/api/v1/sources", body)


async def test_a_batch_becomes_one_event_per_item_each_with_its_own_payload(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    src = await batchy_source(client)
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    mapping = {"post": {"title": "{{ view.object.kind }} {{ view.object.title }} ({{ view.action }})"}}
    await create(
        client,
        "/api/v1/routes",
        {"source_id": src["id"], "target_id": inbox["id"], "events": ["deal.*"], "mapping": mapping},
    )
    items = [
        {"id": "e1", "kind": "deal.created", "deal": "D-1", "name": "Acme renewal"},
        {"id": "e2", "kind": "deal.won", "deal": "D-1", "name": "Acme renewal"},
    ]
    body = json.dumps({"items": items}).encode()
    resp = await client.post(f"/hooks/{src['id']}", content=body, headers=sig(body))
    assert (resp.status_code, resp.headers["content-type"], resp.text) == (200, "text/xml", "<ack n='2'/>")

    async def two_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 2

    await wait_for(two_posts)
    titles = sorted(p["post"]["title"] for p in (await client.get("/api/v1/inbox")).json())
    assert titles == ["deal Acme renewal (deal.created)", "deal Acme renewal (deal.won)"]
    async with runtime.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.events).order_by(t.events.c.dedup_key))).mappings().all()
    assert [json.loads(r["payload"]) for r in rows] == items
    assert [len(r["body"]) for r in rows] == [len(body), 0]  # the raw request is kept once
    assert all(r["subject"] == "D-1" for r in rows)
    # the same batch again: both items are duplicates, nothing more is delivered
    again = await client.post(f"/hooks/{src['id']}", content=body, headers=sig(body))
    assert again.status_code == 200
    assert len((await client.get("/api/v1/events")).json()) == 2


async def test_hooks_shape_refusals_and_a_missing_event_type_is_400(client: httpx.AsyncClient) -> None:
    src = await batchy_source(client)
    body = json.dumps({"items": [{"id": "e1", "deal": "D-1"}]}).encode()
    resp = await client.post(f"/hooks/{src['id']}", content=body, headers=sig(body))
    assert (resp.status_code, resp.text) == (400, "<fault code='missing_event_type'/>")
    bad = await client.post(f"/hooks/{src['id']}", content=body, headers=sig(body, "wrong"))
    assert (bad.status_code, bad.text) == (401, "<fault code='bad_signature'/>")


async def test_a_handshake_teaches_the_secret_once_and_clearing_it_re_arms(client: httpx.AsyncClient) -> None:
    src = await batchy_source(client, secret=None)
    assert src["has_secret"] is False
    first = await client.post(f"/hooks/{src['id']}", headers={"X-Learn-Secret": "learned-1"})
    assert (first.status_code, first.headers["x-learn-secret"]) == (204, "learned-1")
    assert (await client.get(f"/api/v1/sources/{src['id']}")).json()["has_secret"] is True
    second = await client.post(f"/hooks/{src['id']}", headers={"X-Learn-Secret": "attacker"})
    assert (second.status_code, second.text) == (409, "<fault code='secret_already_set'/>")
    body = json.dumps({"items": [{"id": "e1", "kind": "deal.won", "deal": "D-1"}]}).encode()
    assert (await client.post(f"/hooks/{src['id']}", content=body, headers=sig(body, "learned-1"))).status_code == 200
    cleared = await client.patch(f"/api/v1/sources/{src['id']}", json={"secret": None})
    assert cleared.json()["has_secret"] is False
    third = await client.post(f"/hooks/{src['id']}", headers={"X-Learn-Secret": "learned-2"})
    assert third.status_code == 204


async def test_secret_settings_are_write_only_and_reach_the_connector(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    src = await batchy_source(client)
    assert src["settings"] == {"region": "eu"} and src["secret_settings_set"] == ["partner_key"]
    async with runtime.engine.connect() as conn:
        row = (await conn.execute(sa.select(t.sources).where(t.sources.c.id == src["id"]))).mappings().one()
    assert "pk-9" not in json.dumps(row["settings"]) and "pk-9" not in (row["secret_settings_enc"] or "")
    info = await runtime.cache.source(src["id"])
    assert info is not None and info.secret_settings == {"partner_key": "pk-9"}
    # a settings update that leaves the secret setting out keeps it; null removes it
    kept = await client.patch(f"/api/v1/sources/{src['id']}", json={"settings": {"region": "us"}})
    assert kept.json()["secret_settings_set"] == ["partner_key"]
    removed = await client.patch(
        f"/api/v1/sources/{src['id']}", json={"settings": {"region": "us", "partner_key": None}}
    )
    assert removed.json()["secret_settings_set"] == []
    missing = await client.post(
        "/api/v1/sources", json={"connector": "batchy", "name": "no region", "secret": "x", "settings": {}}
    )
    assert missing.status_code == 422 and missing.json()["error"]["details"]["field"] == "settings.region"


async def test_a_route_must_name_events_the_connector_declares(client: httpx.AsyncClient) -> None:
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "gh", "secret": "s"})
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    bad = await client.post(
        "/api/v1/routes", json={"source_id": src["id"], "target_id": tgt["id"], "events": ["issue.opened"]}
    )
    assert bad.status_code == 422
    message = bad.json()["error"]["message"]
    assert "'issue.opened'" in message and "issues.opened" in message  # names the known ones
    ok = await client.post(
        "/api/v1/routes", json={"source_id": src["id"], "target_id": tgt["id"], "events": ["issues.*", "push"]}
    )
    assert ok.status_code == 201
    patched = await client.patch(f"/api/v1/routes/{ok.json()['id']}", json={"events": ["nope.*"]})
    assert patched.status_code == 422


async def test_query_echo_handshake_head_and_get_answers(client: httpx.AsyncClient) -> None:
    spec = {
        "id": "echoer",
        "title": "Echoer",
        "signature": {"scheme": "none"},
        "secret_required": False,
        "handshake": {"query_echo": {"param": "challenge"}},
        "events": {"*": "anything"},
    }
    await create(client, "/api/v1/connectors", spec)
    src = await create(client, "/api/v1/sources", {"connector": "echoer", "name": "e"})
    echo = await client.get(f"/hooks/{src['id']}", params={"challenge": "abc<script>"})
    assert (echo.status_code, echo.text) == (200, "abc<script>")
    assert echo.headers["content-type"].startswith("text/plain")
    assert echo.headers["x-content-type-options"] == "nosniff"
    assert (await client.head(f"/hooks/{src['id']}")).status_code == 200
    plain_get = await client.get(f"/hooks/{src['id']}")
    assert plain_get.status_code == 405 and plain_get.headers["allow"] == "GET, HEAD, POST, OPTIONS"


async def test_the_signed_url_is_the_public_url_behind_a_proxy(tmp_path: Path) -> None:
    """A provider that signs the URL it was given (Trello, HubSpot) signs HUB_PUBLIC_URL, not the Host a
    proxy forwards."""
    settings: Settings = make_settings(tmp_path, public_url="https://hub.example.com/")
    spec = {
        "id": "urlsigner",
        "title": "URL signer",
        "signature": {"header": "X-Sig", "encoding": "base64", "algorithm": "sha1", "signed": "{body}{url}"},
        "events": {"*": "anything"},
    }
    async with running_app(settings) as (_, client):
        await create(client, "/api/v1/connectors", spec)
        src = await create(client, "/api/v1/sources", {"connector": "urlsigner", "name": "u", "secret": "k"})
        assert src["ingest_url"] == f"https://hub.example.com/hooks/{src['id']}"
        body = b'{"type":"x"}'
        mac = hmac.new(b"k", body + src["ingest_url"].encode(), hashlib.sha1).digest()
        headers = {"X-Sig": base64.b64encode(mac).decode()}
        resp = await client.post(f"/hooks/{src['id']}", content=body, headers=headers)  # Host: hub.test
        assert resp.status_code == 202, resp.text


# --- dedup within a window, on both stores -----------------------------------------------------------------


def ev(received_at: float, key: str = "sha256:abc", window: float | None = 60.0) -> NewEvent:
    return NewEvent("src_1", "dropbox", "list_folder", key, None, {}, b"{}", received_at, "unrouted", None, window)


# times chosen against 60 s buckets: 1000 is in bucket 16 (960-1020), 1030 in bucket 17
WINDOW_CASES = [
    ([1000.0, 1010.0], [False, True]),  # same bucket, 10 s later: a repeat
    ([1000.0, 1030.0], [False, True]),  # the next bucket but within 60 s: a repeat
    ([1000.0, 1061.0], [False, False]),  # over the window: a later change gets through
    ([1000.0, 1100.0, 1110.0], [False, False, True]),
]


async def sqlite_file(tmp_path: Path) -> sqlite3.Connection:
    settings = make_settings(tmp_path)
    engine = create_engine(settings)
    await upgrade(engine)
    await engine.dispose()
    return sqlite3.connect(tmp_path / "hub.db", isolation_level=None)


@pytest.mark.parametrize(("times", "duplicate"), WINDOW_CASES)
async def test_dedup_window_on_the_sqlite_writer(tmp_path: Path, times: list[float], duplicate: list[bool]) -> None:
    conn = await sqlite_file(tmp_path)
    # one at a time (each its own batch) and all in one batch: the same answers
    one_by_one = [write_batch(conn, [(ev(ts), [])])[0].duplicate for ts in times]
    assert one_by_one == duplicate
    conn.execute("DELETE FROM events")
    assert [r.duplicate for r in write_batch(conn, [(ev(ts), []) for ts in times])] == duplicate


Store = Callable[[Sequence[tuple[NewEvent, Sequence[Any]]]], Awaitable[list[StoredEvent]]]


@contextlib.asynccontextmanager
async def postgres_store(tmp_path: Path, pg_database: str, kind: str) -> AsyncIterator[tuple[AsyncEngine, Store]]:
    """A migrated Postgres database and one of its two ingest stores: through SQLAlchemy, or on plain
    asyncpg (what scaled mode runs)."""
    engine = create_engine(make_settings(tmp_path, database_url=pg_database))
    await upgrade(engine)
    pg = PgPath(dsn_of(engine.url))

    async def store(batch: Sequence[tuple[NewEvent, Sequence[Any]]]) -> list[StoredEvent]:
        return await (store_events(engine, batch) if kind == "sqlalchemy" else store_events_pg(pg, batch))

    try:
        yield engine, store
    finally:
        await pg.close()
        await engine.dispose()


@pytest.mark.parametrize("kind", ["sqlalchemy", "asyncpg"])
@pytest.mark.parametrize(("times", "duplicate"), WINDOW_CASES)
async def test_dedup_window_on_postgres(
    tmp_path: Path, pg_database: str, times: list[float], duplicate: list[bool], kind: str
) -> None:
    async with postgres_store(tmp_path, pg_database, kind) as (engine, store):
        assert [(await store([(ev(ts), [])]))[0].duplicate for ts in times] == duplicate
        async with engine.begin() as conn:
            await conn.execute(sa.delete(t.events))
        assert [r.duplicate for r in await store([(ev(ts), []) for ts in times])] == duplicate


async def test_an_id_without_a_window_is_a_duplicate_for_ever(tmp_path: Path) -> None:
    conn = await sqlite_file(tmp_path)
    results = [write_batch(conn, [(ev(ts, "delivery-1", None), [])])[0] for ts in (1000.0, 90_000.0)]
    assert [r.duplicate for r in results] == [False, True] and results[0].event_id == results[1].event_id


@pytest.mark.parametrize("kind", ["sqlalchemy", "asyncpg"])
async def test_an_exact_id_already_stored_on_postgres_answers_the_first_event(
    tmp_path: Path, pg_database: str, kind: str
) -> None:
    """Exact keys are not looked up before the insert: the unique index finds the repeat, then its first id."""
    async with postgres_store(tmp_path, pg_database, kind) as (engine, store):
        first = (await store([(ev(1000.0, "delivery-1", None), [])]))[0]
        again = await store([(ev(1001.0, "delivery-2", None), []), (ev(1002.0, "delivery-1", None), [])])
        assert not first.duplicate
        assert [r.duplicate for r in again] == [False, True] and again[1].event_id == first.event_id
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(t.events)) == 2


async def test_both_postgres_stores_write_the_same_rows(tmp_path: Path, pg_database: str) -> None:
    """An event with its headers, body, payload and two routes' deliveries: the asyncpg store writes what
    the SQLAlchemy one writes (ids and times apart)."""
    routes = [RouteInfo(f"rte_{i}", "src_1", f"tgt_{i}", ["*"], None, True) for i in (1, 2)]
    headers = {"x-github-event": "issues", "user-agent": "GitHub-Hookshot/é"}
    rows: dict[str, Any] = {}
    for kind in ("sqlalchemy", "asyncpg"):
        async with postgres_store(tmp_path, pg_database, kind) as (engine, store):
            new = NewEvent(
                "src_1",
                "github",
                "issues.opened",
                f"k-{kind}",
                "issue/7",
                headers,
                b"\x00{}",
                5.0,
                "routed",
                '{"a": [1]}',
            )
            (stored,) = await store([(new, routes)])
            assert not stored.duplicate and len(stored.delivery_ids) == 2
            async with engine.connect() as conn:
                event = (await conn.execute(sa.select(t.events).where(t.events.c.id == stored.event_id))).one()
                deliveries = (await conn.execute(sa.select(t.deliveries).order_by(t.deliveries.c.route_id))).all()
            rows[kind] = (
                {k: v for k, v in event._mapping.items() if k not in ("id", "dedup_key")},
                [{k: v for k, v in d._mapping.items() if k not in ("id", "event_id")} for d in deliveries],
                sorted(d.id for d in deliveries) == sorted(stored.delivery_ids),
            )
            async with engine.begin() as conn:
                await conn.execute(sa.delete(t.deliveries))
                await conn.execute(sa.delete(t.events))
    assert rows["asyncpg"] == rows["sqlalchemy"]
    assert rows["asyncpg"][0]["headers"] == headers and rows["asyncpg"][0]["body"] == b"\x00{}"
    assert rows["asyncpg"][2] is True


# --- verification schemes the specs can say ----------------------------------------------------------------


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (basic("hub", "pw:with:colons"), True),
        (basic("hub", "wrong"), False),
        (basic("other", "pw:with:colons"), False),
        ("Bearer pw:with:colons", False),
        ("Basic not-base64!", False),
        ("Basic " + base64.b64encode(b"no-colon").decode(), False),
    ],
)
def test_http_basic_scheme(header: str, ok: bool) -> None:
    spec = ConnectorSpec.model_validate(
        {"id": "b", "title": "B", "signature": {"scheme": "basic", "header": "Authorization"}, "events": {"*": "x"}}
    )
    req = RawRequest(body=b"{}", headers={"authorization": header})
    if ok:
        verify(spec.signature, "pw:with:colons", req, 0, {"username": "hub"})
    else:
        with pytest.raises(VerificationError) as info:
            verify(spec.signature, "pw:with:colons", req, 0, {"username": "hub"})
        assert info.value.code == "bad_signature"


def test_token_scheme_with_a_prefix() -> None:
    spec = ConnectorSpec.model_validate(
        {
            "id": "t",
            "title": "T",
            "signature": {"scheme": "token", "header": "Authorization", "prefix": "Bearer "},
            "events": {"*": "x"},
        }
    )
    verify(spec.signature, "tok", RawRequest(body=b"", headers={"authorization": "Bearer tok"}), 0)
    with pytest.raises(VerificationError):
        verify(spec.signature, "tok", RawRequest(body=b"", headers={"authorization": "tok"}), 0)


async def test_a_declared_family_admits_its_members_on_a_route(client: httpx.AsyncClient) -> None:
    src = await create(
        client,
        "/api/v1/sources",
        {"connector": "salesforce", "name": "sf", "settings": {"organization_id": "00D000000000062"}},
    )
    tgt = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    member = await client.post(
        "/api/v1/routes", json={"source_id": src["id"], "target_id": tgt["id"], "events": ["Invoice__c.outbound"]}
    )
    assert member.status_code == 201, member.text
    other = await client.post(
        "/api/v1/routes", json={"source_id": src["id"], "target_id": tgt["id"], "events": ["Invoice__c.created"]}
    )
    assert other.status_code == 422


async def test_a_connector_whose_hooks_verify_with_the_secret_needs_one(client: httpx.AsyncClient) -> None:
    """Microsoft Graph signs nothing in a header (its clientState is in the body): still a secret to set."""
    resp = await client.post("/api/v1/sources", json={"connector": "microsoft-graph", "name": "drive"})
    assert resp.status_code == 422 and resp.json()["error"]["details"]["field"] == "secret"
