"""Conformance of every target kind (hub/targets/kinds/): manifest and config, a golden request per kind,
what each target's documentation says its request looks like, limits and dialect, answers, secrets.

Two profiles: incoming webhooks (the URL is the secret; a 404 or 410 means the hook is gone) and APIs
(a token; the URL is an API base). Expected payloads and answers come from the targets' documentation
(cited per kind in DOCS and in providers.md part B), never from hub's code.

Golden requests are committed in tests/fixtures/targets/<kind>.json. After a deliberate change, rewrite
them with ``HUB_UPDATE_GOLDEN=1 pytest tests/conformance/test_targets.py -k golden`` and review the diff
against the target's documentation.
"""

from __future__ import annotations

import base64
import email.utils
import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from hub.mapping.post import Author, Post, PostField
from hub.runtime import outbound_transport
from hub.targets.base import (
    MAX_RETRY_AFTER,
    Answer,
    DeliveryContext,
    OutboundRequest,
    SendInfo,
    SendResult,
    Target,
    TargetConfig,
    ThreadAnchor,
    describe_auth,
    parse_retry_after,
)
from hub.targets.egress import EgressPolicy
from hub.targets.http import encode_json, send_http
from hub.targets.kinds.webhook import signature_headers
from hub.targets.registry import TARGETS, DuplicateKind, discover, get_target
from hub.targets.text import ZWSP, byte_len

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "targets"
UPDATE = os.environ.get("HUB_UPDATE_GOLDEN") == "1"

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
FIRST_POST = "https://rse.example.com/posts/1"
NOW = 1_712_000_000.0

ALL_KINDS = {
    "talkspirit", "slack", "slack-api", "teams", "google-chat", "mattermost",
    "rocketchat", "discord", "zulip", "viva-engage", "webhook", "inbox",
}  # fmt: skip
# A working configuration per kind, and the secret strings it holds that must never leave hub.
CONFIGS: dict[str, dict[str, Any]] = {
    "webhook": {
        "url": "https://receiver.example.com/in/wh-path-4f2a9c",
        "bearer_token": "tok-bearer-8d1e55",
        "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    },
    "talkspirit": {
        "url": "https://webhook.talkspirit.com/v1/incoming/TS-TOKEN-9f8e7d6c",
        "display_name": "GitHub",
        "icon": "https://hub.example.com/github.png",
    },
    "slack": {"url": "https://hooks.slack.com/services/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"},
    "slack-api": {"token": "xoxb-SLACK-BOT-TOKEN-5c4d", "channel": "C1H9RESGL"},
    "teams": {
        "url": "https://prod-42.westeurope.logic.azure.com/workflows/3f0c9e/triggers/manual/paths/invoke"
        "?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=TEAMS-SIG-77aa"
    },
    "google-chat": {
        "url": "https://chat.googleapis.com/v1/spaces/AAAAbcd/messages?key=GC-KEY-5e6f&token=GC-TOKEN-7a8b"
    },
    "mattermost": {"url": "https://mattermost.example.com/hooks/mm-key-xyz123"},
    "rocketchat": {"url": "https://chat.example.com/hooks/RC-ID-111/RC-TOKEN-222"},
    "discord": {"url": "https://discord.com/api/webhooks/223704706495545344/DC-TOKEN-3d89bb"},
    "zulip": {
        "url": "https://example.zulipchat.com",
        "username": "hub-bot@example.zulipchat.com",
        "token": "ZU-KEY-9988",
        "stream": "engineering",
    },
    "viva-engage": {"group_id": 123456789, "token": "VE-ACCESS-1234"},
    "inbox": {},
}
SECRETS: dict[str, list[str]] = {
    "webhook": ["wh-path-4f2a9c", "tok-bearer-8d1e55", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    "talkspirit": ["TS-TOKEN-9f8e7d6c"],
    "slack": ["T0AAA1111", "B0BBB2222", "XyZsecretXyZsecret123456"],
    "slack-api": ["xoxb-SLACK-BOT-TOKEN-5c4d"],
    "teams": ["TEAMS-SIG-77aa"],
    "google-chat": ["GC-KEY-5e6f", "GC-TOKEN-7a8b"],
    "mattermost": ["mm-key-xyz123"],
    "rocketchat": ["RC-TOKEN-222"],
    "discord": ["DC-TOKEN-3d89bb"],
    "zulip": ["ZU-KEY-9988", base64.b64encode(b"hub-bot@example.zulipchat.com:ZU-KEY-9988").decode()],
    "viva-engage": ["VE-ACCESS-1234"],
    "inbox": [],
}
# Each target's documented answer to a successful post, and the remote id it names.
SUCCESS: dict[str, tuple[int, str, str | None]] = {
    "talkspirit": (200, "", None),  # not documented: any 2xx
    "slack": (200, "ok", None),  # api.slack.com/messaging/webhooks
    "slack-api": (  # api.slack.com/methods/chat.postMessage, example response
        200,
        '{"ok": true, "channel": "C1H9RESGL", "ts": "1503435956.000247", "message": {"type": "message"}}',
        "1503435956.000247",
    ),
    "teams": (202, "", None),  # Workflows accept the request
    "google-chat": (  # spaces.messages.create: the Message; a webhook's has name and thread.name
        200,
        '{"name": "spaces/AAAAbcd/messages/BBBB.BBBB", "thread": {"name": "spaces/AAAAbcd/threads/CCCC"}}',
        "spaces/AAAAbcd/messages/BBBB.BBBB",
    ),
    "mattermost": (200, "ok", None),  # developers.mattermost.com: 200, text/plain, ok
    "rocketchat": (200, '{"success": true}', None),
    "discord": (200, '{"id": "1176213048743018496", "channel_id": "199737254929760256"}', "1176213048743018496"),
    "zulip": (200, '{"id": 42, "msg": "", "result": "success"}', "42"),  # zulip.com/api/send-message
    "viva-engage": (201, '{"messages": [{"id": 1234567890, "thread_id": 1234567890}]}', "1234567890"),
    "webhook": (204, "", None),
}
DOCS = {  # the document each kind's request and answers follow
    "talkspirit": "talkspirit.github.io/docs/incoming-webhooks",
    "slack": "api.slack.com/messaging/webhooks",
    "slack-api": "api.slack.com/methods/chat.postMessage",
    "teams": "learn.microsoft.com/en-us/connectors/teams",
    "google-chat": "developers.google.com/chat/api/reference/rest/v1/spaces.messages/create",
    "mattermost": "developers.mattermost.com/integrate/webhooks/incoming",
    "rocketchat": "docs.rocket.chat/docs/rocketchat-marketplace-integrations",
    "discord": "discord.com/developers/docs/resources/webhook",
    "zulip": "zulip.com/api/send-message",
    "viva-engage": "learn.microsoft.com/rest/api/yammer/messages-json-post",
    "webhook": "standard-webhooks",
    "inbox": "GET /api/v1/inbox",
}

KINDS = sorted(TARGETS)


def is_http(target: Target) -> bool:
    """HTTP targets only build a request; the others deliver by themselves."""
    return type(target).deliver is Target.deliver


HTTP_KINDS = [k for k in KINDS if is_http(TARGETS[k])]
WEBHOOK_KINDS = [k for k in HTTP_KINDS if TARGETS[k].manifest.profile == "incoming-webhook"]
API_KINDS = [k for k in HTTP_KINDS if TARGETS[k].manifest.profile == "api"]


def config_for(kind: str, **changes: Any) -> Any:
    assert kind in CONFIGS, f"target {kind}: add a working configuration to CONFIGS (and its secrets to SECRETS)"
    return TARGETS[kind].Config.model_validate({**CONFIGS[kind], **changes})


def build(kind: str, post: Post = POST, anchor: ThreadAnchor | None = None, **changes: Any) -> OutboundRequest:
    return TARGETS[kind].build_request(post, config_for(kind, **changes), SendInfo("dlv_x", anchor, NOW))


def payload(request: OutboundRequest) -> Any:
    return request.form if request.form is not None else request.json


Handler = Callable[[httpx.Request], httpx.Response]


def ctx_for(client: httpx.AsyncClient, delivery_id: str = "dlv_x", anchor: ThreadAnchor | None = None) -> Any:
    return DeliveryContext(delivery_id, "evt_01HZX3K9Q2", "tgt_01HZX3K9Q2", client, 5.0, anchor=anchor, now=NOW)


async def deliver_with(kind: str, handler: Handler, post: Post = POST, **changes: Any) -> SendResult:
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        return await TARGETS[kind].deliver(post, config_for(kind, **changes), ctx_for(client))


def answer(status: int, body: str = "", headers: dict[str, str] | None = None) -> Handler:
    kind = "application/json" if body.startswith("{") else "text/plain"
    return lambda r: httpx.Response(status, text=body, headers={"content-type": kind, **(headers or {})})


# --- the registry and the manifests -------------------------------------------------------------------------


def test_every_documented_kind_is_discovered() -> None:
    assert set(TARGETS) == ALL_KINDS
    for kind, target in TARGETS.items():
        assert get_target(kind) is target
    assert get_target("no-such-kind") is None


def test_a_kind_defined_twice_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "twin_kinds"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("one", "two"):
        (package / f"{name}.py").write_text(
            "from hub.targets.kinds.slack import SlackTarget\n\n"
            f"class Twin{name.title()}(SlackTarget):\n    kind = 'twin'\n"
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    import twin_kinds

    with pytest.raises(DuplicateKind, match="twin"):
        discover(twin_kinds)
    sys.modules.pop("twin_kinds", None)


@pytest.mark.parametrize("kind", KINDS)
def test_target_describes_itself(kind: str) -> None:
    target = TARGETS[kind]
    m = target.manifest
    assert target.kind == kind
    assert m.title.strip() and m.description.strip() and m.docs.strip()
    assert m.profile in ("incoming-webhook", "api", "built-in")
    assert m.threading in ("none", "key", "anchor")
    assert m.body_limit > 0 and m.limit_unit in ("chars", "bytes")
    assert issubclass(target.Config, TargetConfig)
    assert DOCS[kind] in m.docs or kind == "webhook", f"{kind}: cite the document the module follows"
    target.Config.model_validate(m.example)  # the example in the API docs is a working config


def test_threading_of_each_kind_is_what_its_target_offers() -> None:
    threading = {k: TARGETS[k].manifest.threading for k in KINDS}
    assert {k for k, v in threading.items() if v == "anchor"} == {"slack-api", "viva-engage"}
    assert {k for k, v in threading.items() if v == "key"} == {"talkspirit", "google-chat", "zulip"}


def test_secret_fields_are_found_nested_too() -> None:
    assert TARGETS["viva-engage"].secret_fields == ("token", "oauth2.client_secret", "oauth2.refresh_token")
    assert TARGETS["webhook"].secret_fields == ("url", "secret", "bearer_token", "oauth2.client_secret")
    for kind in WEBHOOK_KINDS:  # an incoming webhook's URL carries its token
        assert "url" in TARGETS[kind].secret_fields, kind
    for kind in API_KINDS:  # an API's URL is a public base; the token is the secret
        assert "url" not in TARGETS[kind].secret_fields and "token" in TARGETS[kind].secret_fields, kind


@pytest.mark.parametrize("kind", KINDS)
def test_config_accepts_the_documented_shape_and_refuses_unknown_keys(kind: str) -> None:
    config_for(kind)
    with pytest.raises(ValidationError):
        TARGETS[kind].Config.model_validate({**CONFIGS[kind], "no_such_option": 1})


@pytest.mark.parametrize("kind", KINDS)
def test_preview_never_shows_secrets(kind: str) -> None:
    target = TARGETS[kind]
    shown = json.dumps(target.preview(POST, config_for(kind)))
    for secret in SECRETS[kind]:
        assert secret not in shown
    assert POST.title in shown  # the preview still shows what would be posted


# --- golden requests ----------------------------------------------------------------------------------------


def canonical(request: OutboundRequest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": request.method,
        "url": request.url,
        "headers": dict(sorted(request.headers.items())),
    }
    out["form" if request.form is not None else "json"] = payload(request)
    if request.auth is not None:
        out["auth"] = describe_auth(request.auth)
    return out


@pytest.mark.parametrize("kind", HTTP_KINDS)
def test_golden_request(kind: str) -> None:
    """The exact request for a fixed post: the first of its thread and a later one (replying, or linking
    the first). Reviewed against the target's documentation when written."""
    reply_anchor = ThreadAnchor(SUCCESS[kind][2] or "remote-1", FIRST_POST)
    got = {
        "documentation": TARGETS[kind].manifest.docs,
        "first": canonical(build(kind)),
        "later": canonical(build(kind, anchor=reply_anchor)),
    }
    path = FIXTURES / f"{kind}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert path.exists(), f"no golden request for {kind}: run with HUB_UPDATE_GOLDEN=1 and review it"
    assert json.loads(path.read_text()) == got, f"{kind}'s request changed: review, then HUB_UPDATE_GOLDEN=1"


# --- requests, as each target documents them ----------------------------------------------------------------


@pytest.mark.parametrize("kind", WEBHOOK_KINDS)
def test_an_incoming_webhook_posts_json_to_its_url(kind: str) -> None:
    request = build(kind)
    assert request.method == "POST" and request.form is None
    assert request.url.split("?")[0] == CONFIGS[kind]["url"].split("?")[0]
    assert request.headers["Idempotency-Key"] == "dlv_x"
    assert json.loads(encode_json(request.json)) == request.json


def test_talkspirit_request() -> None:  # talkspirit.github.io/docs/incoming-webhooks
    body = build("talkspirit").json
    assert set(body) == {"title", "content", "url", "contact", "thread_id"}
    assert body["title"] == POST.title and body["url"] == ISSUE_URL
    assert body["thread_id"] == POST.thread_key == "github:octocat/Hello-World#1347"
    assert body["contact"] == {
        "display_name": "octocat",
        "url": "https://github.com/octocat",
        "icon": "https://github.com/images/error/octocat_happy.gif",
    }
    assert POST.body in body["content"] and "**Labels:** bug" in body["content"]
    bare = build("talkspirit", BARE).json
    assert bare["contact"] == {"display_name": "GitHub", "icon": "https://hub.example.com/github.png"}
    assert "url" not in bare and "thread_id" not in bare
    assert bare["content"] == BARE.title  # Talkspirit needs content: the title stands in


def test_slack_webhook_request_is_mrkdwn() -> None:  # api.slack.com/messaging/webhooks, Block Kit
    body = build("slack").json
    assert set(body) == {"text", "blocks"}
    assert body["text"].startswith(f"*<{ISSUE_URL}|{POST.title}>*")  # mrkdwn: <url|text>, *bold*
    assert "**" not in body["text"] and "](" not in body["text"]
    blocks = body["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": POST.title, "emoji": True}}
    mrkdwn = json.dumps([b for b in blocks if b["type"] != "header"])
    assert f"<{ISSUE_URL}|#1347>" in mrkdwn and "*octocat*" in mrkdwn and "**octocat**" not in mrkdwn
    assert f"<{ISSUE_URL}|Open>" in mrkdwn and "](" not in mrkdwn
    section = next(b for b in blocks if b["type"] == "section" and "fields" in b)
    assert {"type": "mrkdwn", "text": "*Labels*\nbug"} in section["fields"]
    assert build("slack", BARE).json == {
        "text": f"*{BARE.title}*",
        "blocks": [{"type": "header", "text": {"type": "plain_text", "text": BARE.title, "emoji": True}}],
    }


def test_slack_escapes_control_characters_from_event_text() -> None:
    hostile = POST.model_copy(update={"body": "ping <!channel> & see <https://evil.example|this>"})
    for kind in ("slack", "slack-api"):
        body = build(kind, hostile).json
        text = json.dumps([body["text"], *[b for b in body["blocks"] if b["type"] != "header"]])
        assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&amp;" in text


def test_slack_api_request() -> None:  # api.slack.com/methods/chat.postMessage
    first = build("slack-api")
    assert (first.method, first.url) == ("POST", "https://slack.com/api/chat.postMessage")
    assert first.headers["Authorization"] == "Bearer xoxb-SLACK-BOT-TOKEN-5c4d"
    assert first.headers["Content-Type"].startswith("application/json")
    assert set(first.json) == {"channel", "text", "blocks"} and first.json["channel"] == "C1H9RESGL"
    reply = build("slack-api", anchor=ThreadAnchor("1503435956.000247"))
    assert reply.json["thread_ts"] == "1503435956.000247"  # "Provide another message's ts value"
    own_base = build("slack-api", url="https://slack.example.org/api/")
    assert own_base.url == "https://slack.example.org/api/chat.postMessage"


def walk(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *[x for v in value.values() for x in walk(v)]]
    if isinstance(value, list):
        return [x for v in value for x in walk(v)]
    return [value]


def test_teams_request_is_an_adaptive_card() -> None:  # Workflows' "Post to a channel" template
    body = build("teams").json
    assert body["type"] == "message" and len(body["attachments"]) == 1
    attachment = body["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] in ("1.4", "1.5")
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["body"][0]["text"] == POST.title and card["body"][0]["weight"].lower() == "bolder"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Open", "url": ISSUE_URL}]
    assert {"title": "Labels", "value": "bug"} in next(b for b in card["body"] if b["type"] == "FactSet")["facts"]
    types = {n.get("type") for n in walk(card) if isinstance(n, dict)}
    assert "Action.Submit" not in types  # does not work through a webhook
    assert types <= {"AdaptiveCard", "TextBlock", "FactSet", "Action.OpenUrl", None}
    later = build("teams", anchor=ThreadAnchor(None, FIRST_POST)).json
    assert f"[the first post]({FIRST_POST})" in json.dumps(later)


def test_google_chat_request() -> None:  # spaces.messages.create; format-messages
    request = build("google-chat")
    url = httpx.URL(request.url)
    assert url.params["key"] == "GC-KEY-5e6f" and url.params["token"] == "GC-TOKEN-7a8b"
    assert url.params["messageReplyOption"] == "REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD"
    assert url.params["requestId"] == "dlv_x"  # the delivery's id: a retry returns the same message
    assert request.json["thread"] == {"threadKey": "github:octocat/Hello-World#1347"}
    text = request.json["text"]
    assert text.startswith(f"*<{ISSUE_URL}|{POST.title}>*") and "*octocat*" in text and "](" not in text
    bare = build("google-chat", BARE)
    assert "thread" not in bare.json and "messageReplyOption" not in httpx.URL(bare.url).params


def test_mattermost_request() -> None:  # developers.mattermost.com/integrate/webhooks/incoming
    body = build("mattermost").json
    assert set(body) == {"text"}
    assert body["text"].startswith(f"**[{POST.title}]({ISSUE_URL})**")  # Mattermost reads Markdown
    assert "**Labels:** bug" in body["text"]
    named = build("mattermost", username="hub", icon_url="https://hub.example.com/i.png").json
    assert (named["username"], named["icon_url"]) == ("hub", "https://hub.example.com/i.png")


def test_rocketchat_request() -> None:  # docs.rocket.chat incoming integrations
    body = build("rocketchat", alias="hub").json
    assert set(body) <= {"text", "alias", "emoji", "avatar", "attachments"}
    assert body["alias"] == "hub" and body["text"] == f"**[{POST.title}]({ISSUE_URL})**"
    attachment = body["attachments"][0]
    assert (attachment["title"], attachment["title_link"]) == (POST.title, ISSUE_URL)
    assert {"short": True, "title": "Labels", "value": "bug"} in attachment["fields"]


def test_discord_request() -> None:  # discord-api-docs: Execute Webhook, Embed Object
    request = build("discord")
    assert httpx.URL(request.url).params["wait"] == "true"  # the answer is the created message
    body = request.json
    assert body["allowed_mentions"] == {"parse": []}  # event text pings nobody
    assert "content" not in body  # the embed carries the post
    embed = body["embeds"][0]
    assert (embed["title"], embed["url"]) == (POST.title, ISSUE_URL)
    assert f"[#1347]({ISSUE_URL})" in embed["description"]  # Discord reads Markdown links in embeds
    assert {"name": "Labels", "value": "bug", "inline": True} in embed["fields"]
    assert embed["author"]["name"] == "octocat"
    later = build("discord", anchor=ThreadAnchor("1", FIRST_POST)).json
    assert later["content"] == f"↪ Follow-up of [the first post]({FIRST_POST})"
    thread_hook = build("discord", url=CONFIGS["discord"]["url"] + "?thread_id=42")
    assert httpx.URL(thread_hook.url).params["thread_id"] == "42"  # a forum thread set in the URL is kept


def test_zulip_request() -> None:  # zulip.com/api/send-message
    request = build("zulip")
    assert request.url == "https://example.zulipchat.com/api/v1/messages"
    expected = base64.b64encode(b"hub-bot@example.zulipchat.com:ZU-KEY-9988").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
    form = request.form
    assert form is not None and request.json is None
    assert {k: form[k] for k in ("type", "to", "topic")} == {
        "type": "stream",
        "to": "engineering",
        "topic": "github:octocat/Hello-World#1347",
    }
    assert form["content"].startswith(f"**[{POST.title}]({ISSUE_URL})**")


def test_viva_engage_request() -> None:  # learn.microsoft.com/rest/api/yammer/messages-json-post
    first = build("viva-engage")
    assert (first.method, first.url) == ("POST", "https://www.yammer.com/api/v1/messages.json")
    assert first.headers["Authorization"] == "Bearer VE-ACCESS-1234"
    assert first.form is not None and first.form["group_id"] == "123456789" and "replied_to_id" not in first.form
    assert first.form["body"].startswith(f"{POST.title} ({ISSUE_URL})")  # plain text
    reply = build("viva-engage", anchor=ThreadAnchor("1234567890"))
    assert reply.form is not None and reply.form["replied_to_id"] == "1234567890"


def test_webhook_request_is_the_canonical_post_signed() -> None:  # Standard Webhooks
    request = build("webhook")
    assert request.json == {"idempotency_key": "dlv_x", "post": POST.model_dump(mode="json")}
    assert request.headers["Authorization"] == "Bearer tok-bearer-8d1e55"
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["webhook-id"] == "dlv_x" and headers["webhook-timestamp"] == str(int(NOW))
    wh = Webhook(CONFIGS["webhook"]["secret"])  # the signature the receiver's library checks
    expected = wh.sign("dlv_x", datetime.fromtimestamp(NOW, UTC), encode_json(request.json).decode())
    assert headers["webhook-signature"] == expected
    assert "Authorization" not in build("webhook", bearer_token=None).headers
    unsigned = {k.lower() for k in build("webhook", secret=None).headers}
    assert not unsigned & {"webhook-id", "webhook-timestamp", "webhook-signature"}
    later = build("webhook", anchor=ThreadAnchor("p1", FIRST_POST)).json
    assert later["first_post"] == {"id": "p1", "url": FIRST_POST}


def test_webhook_signature_matches_the_standard_webhooks_vector() -> None:
    """The spec's published vector (providers.md §0.2), recomputed through hub's signing."""
    headers = signature_headers(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}'
    )
    assert headers["webhook-signature"] == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert headers["webhook-id"] == "msg_p5jXN8AQM9LWM0D4loKWxJek" and headers["webhook-timestamp"] == "1614265330"


@pytest.mark.parametrize(
    ("kind", "bad", "field"),
    [
        ("webhook", {"secret": "not-a-whsec"}, "secret"),
        ("webhook", {"secret": "whsec_c2hvcnQ="}, "secret"),  # 5 bytes: too short to sign with
        ("webhook", {"oauth2": {"token_url": "https://t.example.com", "client_id": "c", "client_secret": "s"}}, ""),
        ("slack-api", {"token": None}, "token"),
        ("zulip", {"stream": ""}, "stream"),
        ("viva-engage", {"group_id": "general"}, "group_id"),
        ("viva-engage", {"oauth2": {"token_url": "https://t.example.com", "client_id": "c"}}, "oauth2.refresh_token"),
    ],
)
def test_bad_config_names_the_field(kind: str, bad: dict[str, Any], field: str) -> None:
    values = {k: v for k, v in {**CONFIGS[kind], **bad}.items() if v is not None}
    with pytest.raises(ValidationError) as exc:
        TARGETS[kind].Config.model_validate(values)
    assert ".".join(str(p) for p in exc.value.errors()[0]["loc"]) == field


# --- dialect and limits -------------------------------------------------------------------------------------

HUGE = Post(
    title="T" * 400,
    body=" ".join(f"word{i}" for i in range(30_000)),  # about 240,000 characters
    link=ISSUE_URL,
    thread_key="k",
    fields=[PostField(name=f"F{i}", value="v" * 2000) for i in range(30)],
)


def body_text(kind: str, request: OutboundRequest) -> str:
    """The text a kind cuts to its body limit."""
    data = payload(request)
    return {
        "talkspirit": lambda: data["content"],
        "slack": lambda: data["blocks"][1]["text"]["text"],
        "slack-api": lambda: data["blocks"][1]["text"]["text"],
        "teams": lambda: data["attachments"][0]["content"]["body"][1]["text"],
        "google-chat": lambda: json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        "mattermost": lambda: data["text"],
        "rocketchat": lambda: data["attachments"][0]["text"],
        "discord": lambda: data["embeds"][0]["description"],
        "zulip": lambda: data["content"],
        "viva-engage": lambda: data["body"],
        "webhook": lambda: data["post"]["body"],
    }[kind]()


@pytest.mark.parametrize("kind", [k for k in HTTP_KINDS if k != "webhook"])
def test_long_posts_are_cut_to_the_limit_with_a_link_to_the_rest(kind: str) -> None:
    m = TARGETS[kind].manifest
    text = body_text(kind, build(kind, HUGE))
    size = byte_len(text) if m.limit_unit == "bytes" else len(text)
    assert m.body_limit * 0.8 < size <= m.body_limit, (kind, size)
    assert ISSUE_URL in text[-300:], f"{kind}: a cut text ends with a link to the whole object"


def test_slack_limits() -> None:
    for kind in ("slack", "slack-api"):
        body = build(kind, HUGE).json
        assert len(body["text"]) <= 40_000
        assert len(body["blocks"][0]["text"]["text"]) <= 150
        fields = next(b for b in body["blocks"] if "fields" in b)["fields"]
        assert len(fields) <= 10 and all(len(f["text"]) <= 2000 for f in fields)


def test_discord_limits() -> None:  # Embed Limits
    body = build("discord", HUGE, anchor=ThreadAnchor("1", FIRST_POST)).json
    embed = body["embeds"][0]
    assert len(body["content"]) <= 2000 and len(embed["title"]) <= 256 and len(embed["description"]) <= 4096
    assert len(embed["fields"]) <= 25 and all(
        len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"]
    )
    total = (
        len(embed["title"]) + len(embed["description"]) + sum(len(f["name"]) + len(f["value"]) for f in embed["fields"])
    )
    assert total <= 6000


def test_google_chat_whole_message_fits_32000_bytes() -> None:
    multibyte = HUGE.model_copy(update={"body": 'é"\n' * 40_000})  # 2-byte letters, escaped quotes and newlines
    for post in (HUGE, multibyte):
        assert len(encode_json(build("google-chat", post).json)) <= 32_000


def test_zulip_topic_is_at_most_60_characters_and_one_per_object() -> None:
    def topic(key: str) -> str:
        form = build("zulip", POST.model_copy(update={"thread_key": key})).form
        assert form is not None
        return form["topic"]

    long_a, long_b = "jira:" + "PROJECT-" * 20 + "1", "jira:" + "PROJECT-" * 20 + "2"
    assert len(topic(long_a)) == 60 and len(topic(long_b)) == 60
    assert topic(long_a) != topic(long_b)  # two objects, two topics, though their keys share 60 characters
    assert topic("github:octocat/Hello-World#1347") == "github:octocat/Hello-World#1347"


def test_event_text_cannot_ping_a_whole_channel() -> None:
    loud = POST.model_copy(update={"body": "hey @channel and @here, @everyone, @all and @**all**"})
    for kind, text in (
        ("mattermost", build("mattermost", loud).json["text"]),
        ("rocketchat", build("rocketchat", loud).json["attachments"][0]["text"]),
        ("discord", build("discord", loud).json["embeds"][0]["description"]),
        ("zulip", (build("zulip", loud).form or {})["content"]),
    ):
        for mention in ("@channel", "@here", "@everyone", "@all", "@**all**"):
            assert mention not in text, (kind, mention)
        assert f"@{ZWSP}channel" in text, kind
    chat = build("google-chat", loud.model_copy(update={"body": "ping <users/all>"})).json["text"]
    assert "<users/all>" not in chat and f"<{ZWSP}users/all>" in chat


# --- answers ------------------------------------------------------------------------------------------------

RATE_LIMITED = '{"message": "You are being rate limited.", "retry_after": %s, "global": false}'


def doc(
    kind: str, status: int, body: str, outcome: str, after: float | None = None, **headers: str
) -> Any:  # an answer as the kind's documentation shows it; ``after``: retried no earlier than this
    return pytest.param(kind, status, body, {k.replace("_", "-"): v for k, v in headers.items()}, outcome, after)


ANSWERS = [
    doc("slack", 400, "invalid_payload", "dead"),
    doc("slack", 403, "action_prohibited", "dead"),
    doc("slack", 404, "no_service", "gone"),
    doc("slack", 410, "channel_is_archived", "gone"),
    doc("slack", 429, "", "retry", 30.0, Retry_After="30"),
    doc("slack-api", 200, '{"ok": false, "error": "ratelimited"}', "retry", 30.0, Retry_After="30"),
    doc("slack-api", 200, '{"ok": false, "error": "rate_limited"}', "retry", 12.0, Retry_After="12"),
    doc("slack-api", 429, "", "retry", 5.0, Retry_After="5"),
    doc("slack-api", 200, '{"ok": false, "error": "internal_error"}', "retry"),
    doc("slack-api", 200, '{"ok": false, "error": "channel_not_found"}', "dead"),
    doc("slack-api", 200, '{"ok": false, "error": "invalid_auth"}', "dead"),
    doc("slack-api", 200, '{"ok": false, "error": "fatal_error"}', "dead"),  # it may have posted: no retry
    doc("slack-api", 200, "<html>a proxy page</html>", "dead"),
    doc("slack-api", 404, "", "dead"),  # an API path, not a revoked hook
    doc("teams", 400, "", "dead"),
    doc("teams", 404, "", "gone"),
    doc("teams", 429, "", "retry", 8.0, Retry_After="8"),
    doc("google-chat", 400, '{"error": {"code": 400, "status": "INVALID_ARGUMENT"}}', "dead"),
    doc("google-chat", 429, '{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}', "retry"),
    doc("google-chat", 404, '{"error": {"code": 404, "status": "NOT_FOUND"}}', "gone"),
    doc("mattermost", 200, "<html>captive portal</html>", "dead"),  # not Mattermost's "ok"
    doc("mattermost", 400, '{"id": "web.incoming_webhook.parse.app_error", "status_code": 400}', "dead"),
    doc("rocketchat", 200, '{"success": false, "error": "error-invalid-channel"}', "dead"),
    doc("rocketchat", 400, '{"success": false, "error": "invalid"}', "dead"),
    doc("discord", 204, "", "delivered"),  # without wait: no message
    doc("discord", 429, RATE_LIMITED % 64.57, "retry", 65.0, Retry_After="65"),  # the header asks longer
    doc("discord", 429, RATE_LIMITED % 1336.57, "retry", 1336.57),  # only the body says
    doc("discord", 429, RATE_LIMITED % 90.5, "retry", 90.5, Retry_After="2"),  # the body asks longer
    doc("discord", 404, '{"message": "Unknown Webhook", "code": 10015}', "gone"),
    doc("zulip", 400, '{"code": "BAD_REQUEST", "msg": "Stream does not exist", "result": "error"}', "dead"),
    doc("zulip", 401, '{"code": "UNAUTHORIZED", "msg": "Invalid API key", "result": "error"}', "dead"),
    doc(
        "zulip",
        429,
        '{"code": "RATE_LIMIT_HIT", "result": "error", "retry-after": 28.7}',
        "retry",
        29,
        Retry_After="29",
    ),
    doc("zulip", 200, '{"result": "error", "msg": "?"}', "dead"),
    doc("viva-engage", 401, '{"response": {"message": "Token not found.", "code": 16, "stat": "fail"}}', "dead"),
    doc("viva-engage", 429, "", "retry", 30.0, Retry_After="30"),
    doc("webhook", 410, "", "gone"),
    doc("talkspirit", 404, "", "gone"),
    doc("talkspirit", 503, "", "retry"),
]


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_documented_success_is_delivered_with_the_remote_post(kind: str) -> None:
    status, text, remote_id = SUCCESS[kind]
    result = await deliver_with(kind, answer(status, text))
    assert (result.outcome, result.status_code, result.error) == ("delivered", status, None)
    assert result.remote_id == remote_id


@pytest.mark.parametrize(("kind", "status", "text", "headers", "outcome", "after"), ANSWERS)
async def test_documented_answers_are_classified(
    kind: str, status: int, text: str, headers: dict[str, str], outcome: str, after: float | None
) -> None:
    result = await deliver_with(kind, answer(status, text, headers))
    assert (result.outcome, result.status_code) == (outcome, status)
    if after is not None:
        assert result.retry_after is not None and result.retry_after >= after  # never earlier than asked
    assert (result.error is None) is (outcome == "delivered")


def test_webhook_receiver_may_name_the_post_it_created() -> None:
    data = {"id": "post-77", "url": "https://intranet.example.com/p/77"}
    result = TARGETS["webhook"].read_answer(Answer(200, httpx.Headers(), json.dumps(data).encode()), None, NOW)
    assert (result.outcome, result.remote_id, result.remote_url) == ("delivered", *data.values())


def test_viva_engage_answer_names_the_message_and_its_link() -> None:
    target = TARGETS["viva-engage"]
    data = {"messages": [{"id": 99, "web_url": "https://www.yammer.com/example.com/messages/99"}]}
    result = target.read_answer(Answer(201, httpx.Headers(), json.dumps(data).encode()), config_for("viva-engage"), NOW)
    assert (result.remote_id, result.remote_url) == ("99", "https://www.yammer.com/example.com/messages/99")


STATUSES = [(408, "retry"), (429, "retry"), (500, "retry"), (502, "retry"), (503, "retry"), (400, "dead"),
            (401, "dead"), (403, "dead"), (410, "gone"), (301, "retry")]  # fmt: skip


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(("status", "outcome"), STATUSES)
async def test_status_is_classified(kind: str, status: int, outcome: str) -> None:
    result = await deliver_with(kind, answer(status, f"answer {status}"))
    assert (result.outcome, result.status_code) == (outcome, status)
    assert result.error is not None and result.error.startswith(f"HTTP {status}")
    assert result.response_excerpt == f"answer {status}"


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_404_disables_an_incoming_webhook_but_not_an_api(kind: str) -> None:
    result = await deliver_with(kind, answer(404, "not found"))
    expected = "gone" if TARGETS[kind].manifest.profile == "incoming-webhook" else "dead"
    assert result.outcome == expected


@pytest.mark.parametrize("kind", HTTP_KINDS)
@pytest.mark.parametrize(
    "exc",
    [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError],
)
async def test_transport_failures_are_retried(kind: str, exc: type[httpx.TransportError]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    result = await deliver_with(kind, handler)
    assert (result.outcome, result.status_code) == ("retry", None)
    assert result.error
    if issubclass(exc, httpx.TimeoutException):
        assert result.error.startswith("timeout")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_connection_says_so() -> None:
    """aiohttp's refusal reaches httpx as a ConnectTimeout: hub names what happened."""
    request = OutboundRequest("POST", f"http://127.0.0.1:{closed_port()}/hook", {}, {"title": "t"})
    async with httpx.AsyncClient(transport=outbound_transport(2, EgressPolicy())) as client:
        result = await send_http(request, ctx_for(client), lambda a: SendResult("delivered"), [])
    assert result.outcome == "retry"
    assert result.error is not None and result.error.startswith("connection refused"), result.error


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_secrets_never_reach_errors_or_excerpts(kind: str) -> None:
    """A target that echoes the request (its URL, its headers) in an error answer or a message."""

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text=json.dumps({"url": str(request.url), "headers": dict(request.headers)}))

    result = await deliver_with(kind, echo)
    kept = f"{result.error} {result.response_excerpt}"
    for secret in SECRETS[kind]:
        assert secret not in kept, (kind, secret)

    def raises(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot reach {request.url} with {request.headers.get('authorization')}")

    failed = await deliver_with(kind, raises)
    for secret in SECRETS[kind]:
        assert secret not in str(failed.error), (kind, secret)


async def test_send_http_honours_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 120, usegmt=True)
    request = OutboundRequest("POST", "https://webhook.talkspirit.com/v1/incoming/x", {}, {"title": "t"})
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer(503, "", {"Retry-After": when}))) as client:
        read = TARGETS["talkspirit"].read_answer
        result = await send_http(request, ctx_for(client), lambda a: read(a, None, time.time()), [])
    assert result.outcome == "retry"
    assert result.retry_after is not None and 115 <= result.retry_after <= 121


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
        ("99999999", MAX_RETRY_AFTER),  # capped
        (None, None),
        ("", None),
        ("soon", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_delivery_sends_what_build_request_built(kind: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(*SUCCESS[kind][:2])(request)

    assert (await deliver_with(kind, handler)).outcome == "delivered"
    built = TARGETS[kind].build_request(POST, config_for(kind), SendInfo("dlv_x", None, NOW))
    sent = seen[0]
    assert (sent.method, str(sent.url)) == ("POST", str(httpx.URL(built.url)))
    assert sent.headers["idempotency-key"] == "dlv_x"
    assert sent.headers["user-agent"].startswith("rse-hub/")
    for name, value in built.headers.items():
        assert sent.headers[name] == value
    if built.form is not None:
        assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
        assert dict(httpx.QueryParams(sent.content.decode())) == built.form
    else:
        assert sent.headers["content-type"].startswith("application/json")
        assert sent.content == encode_json(built.json)  # the bytes a webhook signature covers


# --- the inbox ----------------------------------------------------------------------------------------------


class MemoryInbox:
    def __init__(self) -> None:
        self.posts: dict[str, tuple[str, str, Post]] = {}

    async def put(self, target_id: str, delivery_id: str, event_id: str, post: Post) -> str:
        self.posts.setdefault(delivery_id, (target_id, event_id, post))
        return f"post-{delivery_id}"


async def test_inbox_stores_the_post_in_its_store_without_the_network() -> None:
    def no_network(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the inbox must not use the network")

    store = MemoryInbox()
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as client:
        ctx = DeliveryContext("dlv_1", "evt_1", "tgt_1", client, 5.0, inbox=store)
        result = await TARGETS["inbox"].deliver(POST, config_for("inbox"), ctx)
    assert (result.outcome, result.remote_id) == ("delivered", "post-dlv_1")
    assert store.posts == {"dlv_1": ("tgt_1", "evt_1", POST)}


def test_inbox_preview_is_the_post() -> None:
    assert TARGETS["inbox"].preview(POST, config_for("inbox")) == {"post": POST.model_dump(mode="json")}


@pytest.mark.parametrize("kind", HTTP_KINDS)
async def test_a_hostile_answer_nested_deep_is_only_an_answer(kind: str) -> None:
    result = await deliver_with(kind, answer(200, "[" * 16_000 + "]" * 16_000))
    assert result.outcome in ("delivered", "dead") and result.remote_id is None
