"""Conformance of every target kind in hub.targets.registry.TARGETS: requests, secrets, outcomes, idempotency."""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from hub.db.tables import inbox_posts, metadata
from hub.mapping.post import Author, Post, PostField
from hub.targets.base import (
    MAX_RETRY_AFTER,
    DeliveryContext,
    OutboundRequest,
    SendResult,
    Target,
    TargetConfig,
    parse_retry_after,
    send_http,
)
from hub.targets.registry import TARGETS, get_target

ISSUE_URL = "https://github.com/octocat/Hello-World/issues/1347"
POST = Post(
    title="Issue #1347 opened: Found a bug",
    body=f"**octocat** opened [#1347]({ISSUE_URL}) in **octocat/Hello-World**.\n\nI'm having a problem with this.",
    link=ISSUE_URL,
    author=Author(
        name="octocat",
        url="https://github.com/octocat",
        avatar="https://github.com/images/error/octocat_happy.gif",
    ),
    thread_key="github:octocat/Hello-World#1347",
    fields=[PostField(name="Repository", value="octocat/Hello-World"), PostField(name="Labels", value="bug")],
    audience=["hubot"],
    event_type="issues.opened",
    event_id="evt_01HZX3K9Q2",
    source_id="src_01HZX3K9Q2",
)
BARE = Post(title="Nightly backup finished")

# A working configuration per kind, and the secret strings it holds that must never leave in a preview.
CONFIGS: dict[str, dict[str, Any]] = {
    "webhook": {"url": "https://receiver.example.com/in/wh-path-4f2a9c", "bearer_token": "tok-bearer-8d1e55"},
    "talkspirit": {
        "url": "https://webhook.talkspirit.com/v1/incoming/TS-TOKEN-9f8e7d6c",
        "display_name": "GitHub",
        "icon": "https://hub.example.com/github.png",
    },
    "slack": {"url": "https://hooks.slack.com/services/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"},
    "inbox": {},
}
SECRETS: dict[str, list[str]] = {
    "webhook": ["wh-path-4f2a9c", "tok-bearer-8d1e55"],
    "talkspirit": ["TS-TOKEN-9f8e7d6c"],
    "slack": ["T0AAA1111", "B0BBB2222", "XyZsecretXyZsecret123456"],
    "inbox": [],
}

KINDS = sorted(TARGETS)


def is_http(target: Target) -> bool:
    """HTTP targets only build a request; the others deliver by themselves."""
    return type(target).deliver is Target.deliver


HTTP_KINDS = [k for k in KINDS if is_http(TARGETS[k])]


def config_for(kind: str, **changes: Any) -> Any:
    assert kind in CONFIGS, f"target {kind}: add a working configuration to CONFIGS (and its secrets to SECRETS)"
    return TARGETS[kind].Config.model_validate({**CONFIGS[kind], **changes})


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    async with eng.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield eng
    await eng.dispose()


@pytest.fixture
def no_db() -> AsyncEngine:
    """HTTP targets never touch the database: an engine that is never connected."""
    return create_async_engine("sqlite+aiosqlite://")


Handler = Callable[[httpx.Request], httpx.Response]


def ctx_for(engine: AsyncEngine, client: httpx.AsyncClient, delivery_id: str = "dlv_x") -> DeliveryContext:
    return DeliveryContext(
        delivery_id=delivery_id,
        event_id="evt_01HZX3K9Q2",
        target_id="tgt_01HZX3K9Q2",
        client=client,
        timeout=5.0,
        engine=engine,
    )


async def deliver_with(engine: AsyncEngine, kind: str, handler: Handler, post: Post = POST) -> SendResult:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await TARGETS[kind].deliver(post, config_for(kind), ctx_for(engine, client))


# --- every target -------------------------------------------------------------------------------------------


def test_registry_is_not_empty_and_lookup_works() -> None:
    assert {"talkspirit", "slack", "webhook", "inbox"} <= set(TARGETS)
    for kind, target in TARGETS.items():
        assert get_target(kind) is target
    assert get_target("no-such-kind") is None


@pytest.mark.parametrize("kind", KINDS)
def test_target_describes_itself(kind: str) -> None:
    target = TARGETS[kind]
    assert target.kind == kind
    assert isinstance(target.title, str) and target.title.strip()
    assert issubclass(target.Config, TargetConfig)
    assert set(target.secret_fields) <= set(target.Config.model_fields)


@pytest.mark.parametrize("kind", KINDS)
def test_config_accepts_the_documented_shape_and_refuses_unknown_keys(kind: str) -> None:
    config_for(kind)
    with pytest.raises(ValidationError):
        TARGETS[kind].Config.model_validate({**CONFIGS[kind], "no_such_option": 1})


@pytest.mark.parametrize("kind", KINDS)
def test_target_either_builds_a_request_or_delivers_itself(kind: str) -> None:
    target = TARGETS[kind]
    if is_http(target):
        assert isinstance(target.build_request(POST, config_for(kind), "dlv_x"), OutboundRequest)
    else:
        assert type(target).deliver is not Target.deliver


@pytest.mark.parametrize("kind", KINDS)
def test_preview_never_shows_secrets(kind: str) -> None:
    target = TARGETS[kind]
    config = config_for(kind)
    shown = json.dumps(target.preview(POST, config))
    for name in target.secret_fields:
        value = getattr(config, name)
        if value is None:
            continue
        value = str(value)
        hidden = httpx.URL(value).path if value.startswith("http") else value
        assert hidden.strip("/") and hidden not in shown, f"{name} leaks into the preview"
    for secret in SECRETS[kind]:
        assert secret not in shown
    assert POST.title in shown  # the preview still shows what would be posted


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_url_of_an_http_target_is_a_secret(kind: str) -> None:
    """RSE and chat incoming-webhook URLs carry their token in the path."""
    assert "url" in TARGETS[kind].secret_fields


# --- HTTP targets -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_build_request_posts_json_to_the_configured_url(kind: str) -> None:
    config = config_for(kind)
    request = TARGETS[kind].build_request(POST, config, "dlv_x")
    assert request is not None
    assert request.method == "POST"
    assert request.url == CONFIGS[kind]["url"]
    assert request.headers["Idempotency-Key"] == "dlv_x"
    assert isinstance(request.json, dict)
    assert json.loads(json.dumps(request.json)) == request.json


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_delivery_sends_what_build_request_built(kind: str, no_db: AsyncEngine) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text="ok")

    result = await deliver_with(no_db, kind, handler)
    assert result.outcome == "delivered"
    assert result.status_code == 200
    assert result.error is None
    assert result.response_excerpt == "ok"
    assert len(seen) == 1
    sent = seen[0]
    built = TARGETS[kind].build_request(POST, config_for(kind), "dlv_x")
    assert built is not None
    assert sent.method == "POST"
    assert str(sent.url) == CONFIGS[kind]["url"]
    assert sent.headers["idempotency-key"] == "dlv_x"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"].startswith("rse-hub/")
    assert json.loads(sent.content) == built.json


OUTCOMES = [
    (200, "delivered"),
    (201, "delivered"),
    (202, "delivered"),
    (204, "delivered"),
    (408, "retry"),
    (429, "retry"),
    (500, "retry"),
    (502, "retry"),
    (503, "retry"),
    (400, "dead"),
    (401, "dead"),
    (403, "dead"),
    (404, "dead"),
    (404, "dead"),
    (410, "gone"),
]


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(("status", "outcome"), OUTCOMES)
async def test_status_is_classified(kind: str, status: int, outcome: str, no_db: AsyncEngine) -> None:
    result = await deliver_with(no_db, kind, lambda r: httpx.Response(status, text=f"answer {status}"))
    assert (result.outcome, result.status_code) == (outcome, status)
    assert (result.error is None) is (outcome == "delivered")
    if outcome != "delivered":
        assert result.error == f"HTTP {status}"
        assert result.response_excerpt == f"answer {status}"


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_transport_failures_are_retried(kind: str, exc: type[httpx.TransportError], no_db: AsyncEngine) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    result = await deliver_with(no_db, kind, handler)
    assert result.outcome == "retry"
    assert result.status_code is None
    assert result.error
    if issubclass(exc, httpx.TimeoutException):
        assert result.error.startswith("timeout")


async def test_send_http_honours_retry_after_seconds(no_db: AsyncEngine) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(429, headers={"Retry-After": "7"}))
    request = OutboundRequest("POST", "https://hooks.slack.com/services/T/B/X", {"Idempotency-Key": "dlv_x"}, {})
    async with httpx.AsyncClient(transport=transport) as client:
        result = await send_http(request, ctx_for(no_db, client))
    assert (result.outcome, result.retry_after) == ("retry", 7.0)


async def test_send_http_honours_retry_after_http_date(no_db: AsyncEngine) -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    transport = httpx.MockTransport(lambda r: httpx.Response(503, headers={"Retry-After": when}))
    request = OutboundRequest("POST", "https://webhook.talkspirit.com/v1/incoming/x", {}, {"title": "t"})
    async with httpx.AsyncClient(transport=transport) as client:
        result = await send_http(request, ctx_for(no_db, client))
    assert result.outcome == "retry"
    assert result.retry_after is not None and 115 <= result.retry_after <= 121


async def test_send_http_without_retry_after(no_db: AsyncEngine) -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(503))
    request = OutboundRequest("POST", "https://example.com/x", {}, {})
    async with httpx.AsyncClient(transport=transport) as client:
        result = await send_http(request, ctx_for(no_db, client))
    assert (result.outcome, result.retry_after, result.response_excerpt) == ("retry", None, None)


NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("-5", 0.0),
        (email.utils.formatdate(NOW + 120, usegmt=True), 120.0),
        (email.utils.formatdate(NOW - 60, usegmt=True), 0.0),  # a date in the past: retry now
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        ("99999999", MAX_RETRY_AFTER),  # capped
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


# --- per kind, from the targets' documented APIs ------------------------------------------------------------


def body_of(kind: str, post: Post = POST, **changes: Any) -> dict[str, Any]:
    request = TARGETS[kind].build_request(post, config_for(kind, **changes), "dlv_x")
    assert request is not None
    body: dict[str, Any] = request.json
    return body


def test_talkspirit_body() -> None:
    body = body_of("talkspirit")
    assert body["title"] == POST.title
    assert body["url"] == ISSUE_URL
    assert body["thread_id"] == POST.thread_key == "github:octocat/Hello-World#1347"
    assert body["contact"] == {
        "display_name": "octocat",
        "url": "https://github.com/octocat",
        "icon": "https://github.com/images/error/octocat_happy.gif",
    }
    assert POST.body in body["content"]
    assert "**Labels:** bug" in body["content"]
    assert set(body) <= {"title", "content", "url", "contact", "thread_id"}


def test_talkspirit_events_of_one_object_share_thread_id() -> None:
    closed = POST.model_copy(update={"title": "Issue #1347 closed: Found a bug", "body": "closed"})
    assert body_of("talkspirit", closed)["thread_id"] == body_of("talkspirit")["thread_id"]


def test_talkspirit_body_without_author_link_thread_or_text() -> None:
    body = body_of("talkspirit", BARE)
    assert body["contact"] == {"display_name": "GitHub", "icon": "https://hub.example.com/github.png"}
    assert "url" not in body and "thread_id" not in body
    assert body["content"] == BARE.title  # Talkspirit needs content: the title stands in


def test_slack_body() -> None:
    body = body_of("slack")
    assert body["text"].startswith(f"**[{POST.title}]({ISSUE_URL})**")  # Markdown, read by Mattermost/Rocket.Chat
    assert "I'm having a problem with this." in body["text"]
    blocks = body["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": POST.title, "emoji": True}}
    mrkdwn = json.dumps([b for b in blocks if b["type"] != "header"])
    assert f"<{ISSUE_URL}|#1347>" in mrkdwn
    assert "*octocat*" in mrkdwn and "**octocat**" not in mrkdwn
    assert "](" not in mrkdwn  # no Markdown link left over
    assert f"<{ISSUE_URL}|Open>" in mrkdwn
    section = next(b for b in blocks if b["type"] == "section" and "fields" in b)
    assert {"type": "mrkdwn", "text": "*Labels*\nbug"} in section["fields"]
    assert "username" not in body and "icon_url" not in body


def test_slack_options_and_limits() -> None:
    body = body_of("slack", username="hub", icon_url="https://hub.example.com/i.png")
    assert (body["username"], body["icon_url"]) == ("hub", "https://hub.example.com/i.png")
    long = POST.model_copy(update={"title": "x" * 400, "body": "y" * 5000})
    blocks = body_of("slack", long)["blocks"]
    assert len(blocks[0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in blocks if b["type"] == "section" and "text" in b)


def test_slack_body_of_a_bare_post() -> None:
    body = body_of("slack", BARE)
    assert body["text"] == f"**{BARE.title}**"
    assert body["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": BARE.title, "emoji": True}},
    ]


def test_slack_escapes_control_characters_from_event_text() -> None:
    hostile = POST.model_copy(update={"body": "ping <!channel> & see <https://evil.example|this>"})
    mrkdwn = json.dumps([b for b in body_of("slack", hostile)["blocks"] if b["type"] != "header"])
    assert "<!channel>" not in mrkdwn
    assert "&lt;!channel&gt;" in mrkdwn and "&amp;" in mrkdwn


def test_webhook_body_and_bearer() -> None:
    request = TARGETS["webhook"].build_request(POST, config_for("webhook"), "dlv_x")
    assert request is not None
    assert request.json == {"idempotency_key": "dlv_x", "post": POST.model_dump(mode="json")}
    assert request.headers["Authorization"] == "Bearer tok-bearer-8d1e55"
    assert Post.model_validate(request.json["post"]) == POST


def test_webhook_without_bearer_sends_no_authorization() -> None:
    request = TARGETS["webhook"].build_request(POST, config_for("webhook", bearer_token=None), "dlv_x")
    assert request is not None
    assert "Authorization" not in request.headers


async def test_webhook_bearer_reaches_the_receiver(no_db: AsyncEngine) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    assert (await deliver_with(no_db, "webhook", handler)).outcome == "delivered"
    assert seen[0].headers["authorization"] == "Bearer tok-bearer-8d1e55"


# --- the inbox ----------------------------------------------------------------------------------------------


async def inbox_rows(engine: AsyncEngine) -> list[Any]:
    async with engine.connect() as conn:
        return list(await conn.execute(sa.select(inbox_posts).order_by(inbox_posts.c.created_at)))


async def test_inbox_stores_the_post(engine: AsyncEngine) -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the inbox must not use the network")

    result = await deliver_with(engine, "inbox", no_network)
    assert result.outcome == "delivered"
    rows = await inbox_rows(engine)
    assert len(rows) == 1
    row = rows[0]
    assert (row.delivery_id, row.event_id, row.target_id) == ("dlv_x", "evt_01HZX3K9Q2", "tgt_01HZX3K9Q2")
    assert row.post == POST.model_dump(mode="json")


async def test_inbox_is_idempotent_on_delivery_id(engine: AsyncEngine) -> None:
    inbox = TARGETS["inbox"]
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(500))) as client:
        first = await inbox.deliver(POST, config_for("inbox"), ctx_for(engine, client, "dlv_1"))
        stored = await inbox_rows(engine)
        again = await inbox.deliver(POST, config_for("inbox"), ctx_for(engine, client, "dlv_1"))
        assert await inbox_rows(engine) == stored  # the retry changed nothing: same post id, same time
        other = await inbox.deliver(BARE, config_for("inbox"), ctx_for(engine, client, "dlv_2"))
    assert (first.outcome, again.outcome, other.outcome) == ("delivered", "delivered", "delivered")
    rows = await inbox_rows(engine)
    assert sorted(r.delivery_id for r in rows) == ["dlv_1", "dlv_2"]
    assert {r.delivery_id: r.post["title"] for r in rows} == {"dlv_1": POST.title, "dlv_2": BARE.title}


def test_inbox_preview_is_the_post() -> None:
    assert TARGETS["inbox"].preview(POST, config_for("inbox")) == {"post": POST.model_dump(mode="json")}
