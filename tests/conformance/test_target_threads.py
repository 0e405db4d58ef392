"""One business object = one thread, end to end: GitHub events through hub to a fake RSE that answers as
each target documents (Slack's ``{"ok": true, "ts": …}``, Viva Engage's ``{"messages": [{"id": …}]}``,
Zulip's ``{"result": "success", "id": …}``…). Opened → commented → closed on one issue lands in one
thread on every threaded kind, in order; a second issue gets its own. Rate limits are waited out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.db import tables as t
from hub.runtime import Runtime
from tests.conftest import create, create_pipeline, wait_for
from tests.helpers import GITHUB_SECRET, github_issue, github_request
from tests.receiver import Received, Receiver

Answer = tuple[int, dict[str, str], bytes]


def _json(status: int, body: Any, **headers: str) -> Answer:
    return status, {k.replace("_", "-"): v for k, v in headers.items()}, json.dumps(body).encode()


def _text(status: int, body: str) -> Answer:
    return status, {"content-type": "text/plain"}, body.encode()


# What each fake RSE answers to its n-th post, as the target's documentation shows it.
DOCUMENTED: dict[str, Callable[[int, Received], Answer]] = {
    "slack-api": lambda n, r: _json(200, {"ok": True, "channel": "C1H9RESGL", "ts": f"1712.{n:04d}"}),
    "viva-engage": lambda n, r: _json(201, {"messages": [{"id": 1000 + n, "web_url": f"https://yam.example/m/{n}"}]}),
    "zulip": lambda n, r: _json(200, {"id": n, "msg": "", "result": "success"}),
    "google-chat": lambda n, r: _json(
        200, {"name": f"spaces/S/messages/M{n}", "thread": {"name": "spaces/S/threads/T"}}
    ),
    "talkspirit": lambda n, r: _text(200, ""),
    "discord": lambda n, r: _json(200, {"id": str(9000 + n), "channel_id": "199737254929760256"}),
    "webhook": lambda n, r: _json(200, {"id": f"p{n}", "url": f"https://intranet.example.com/p/{n}"}),
    "mattermost": lambda n, r: _text(200, "ok"),
    "rocketchat": lambda n, r: _json(200, {"success": True}),
    "slack": lambda n, r: _text(200, "ok"),
    "teams": lambda n, r: _text(202, ""),
}


def settings_for(kind: str, base: str) -> dict[str, Any]:
    """A target of ``kind`` pointing at the fake RSE under /<kind>/."""
    root = f"{base}/{kind}"
    return {
        "slack-api": {"token": "xoxb-test", "channel": "C1H9RESGL", "url": f"{root}/api"},
        "viva-engage": {"group_id": 42, "token": "user-token", "url": f"{root}/api/v1"},
        "zulip": {"url": root, "username": "bot@example.com", "token": "zulip-key", "stream": "eng"},
        "google-chat": {"url": f"{root}/v1/spaces/S/messages?key=k&token=t"},
        "discord": {"url": f"{root}/api/webhooks/1/tok"},
    }.get(kind, {"url": f"{root}/hooks/secret"})


class FakeRse:
    def __init__(self, rate_limited: dict[str, list[Answer]] | None = None) -> None:
        self.counts: dict[str, int] = {}
        self.first_answers = rate_limited or {}

    def __call__(self, got: Received) -> Answer:
        kind = got.path.split("/")[1]
        if self.first_answers.get(kind):
            return self.first_answers[kind].pop(0)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        return DOCUMENTED[kind](self.counts[kind], got)


def comment(number: int) -> dict[str, Any]:
    payload = github_issue(number, "created")
    payload["comment"] = {"body": "Me too.", "html_url": f"https://github.com/octocat/Hello-World/issues/{number}#c"}
    return payload


async def send(client: httpx.AsyncClient, source_id: str, payload: dict[str, Any], event: str = "issues") -> None:
    body, headers = github_request(payload, event)
    resp = await client.post(f"/hooks/{source_id}", content=body, headers=headers)
    assert resp.status_code == 202, resp.text


def posts(receiver: Receiver, kind: str) -> list[Received]:
    return [r for r in receiver.requests if r.path.split("/")[1] == kind and 200 <= r.status < 300]


def of_issue(requests: list[Received], number: int) -> list[Received]:
    other = 2 if number == 1 else 1
    return [r for r in requests if f"#{other}" not in json.dumps(r.body) + r.query]


def text(r: Received) -> str:
    return json.dumps(r.body, ensure_ascii=False)


async def delivered(client: httpx.AsyncClient, count: int) -> bool:
    found = (await client.get("/api/v1/deliveries", params={"status": "delivered", "limit": 500})).json()
    return len(found) >= count


async def test_one_business_object_is_one_thread_on_every_threaded_kind(
    client: httpx.AsyncClient, receiver: Receiver, runtime: Runtime
) -> None:
    receiver.respond = FakeRse()
    src = await create(client, "/api/v1/sources", {"connector": "github", "name": "acme", "secret": GITHUB_SECRET})
    targets = {}
    for kind in DOCUMENTED:
        tgt = await create(client, "/api/v1/targets", {"kind": kind, "name": kind, **settings_for(kind, receiver.base)})
        route = {"source_id": src["id"], "target_id": tgt["id"], "events": ["issues.*", "issue_comment.*"]}
        await create(client, "/api/v1/routes", route)
        targets[kind] = tgt["id"]
    await send(client, src["id"], github_issue(1, "opened"))
    await send(client, src["id"], comment(1), "issue_comment")
    await send(client, src["id"], github_issue(1, "closed"))
    await send(client, src["id"], github_issue(2, "opened"))
    await wait_for(lambda: delivered(client, 4 * len(DOCUMENTED)), timeout=30)

    for kind in DOCUMENTED:
        first_issue, second_issue = of_issue(posts(receiver, kind), 1), of_issue(posts(receiver, kind), 2)
        assert len(first_issue) == 3 and len(second_issue) == 1, kind
        order = [next(w for w in ("opened", "commented", "closed") if w in text(r)) for r in first_issue]
        assert order == ["opened", "commented", "closed"], kind  # in order, one at a time

    def field(kind: str, number: int, read: Callable[[Received], Any]) -> list[Any]:
        return [read(r) for r in of_issue(posts(receiver, kind), number)]

    # anchored threads: the first post's id, from the target's answer, in every later post
    slack = field("slack-api", 1, lambda r: r.body.get("thread_ts"))
    assert slack[0] is None and slack[1] == slack[2] and slack[1].startswith("1712.")
    assert field("slack-api", 2, lambda r: r.body.get("thread_ts")) == [None]
    yammer = field("viva-engage", 1, lambda r: r.body.get("replied_to_id"))
    assert yammer[0] is None and yammer[1] == yammer[2] and int(yammer[1]) > 1000
    assert field("viva-engage", 2, lambda r: r.body.get("replied_to_id")) == [None]
    # threads by key: the same key for one object, another for the second
    for kind, read in (
        ("zulip", lambda r: r.body["topic"]),
        ("google-chat", lambda r: r.body["thread"]["threadKey"]),
        ("talkspirit", lambda r: r.body["thread_id"]),
    ):
        keys = field(kind, 1, read)
        assert len(set(keys)) == 1 and field(kind, 2, read) != keys[:1], kind
    assert all(
        "messageReplyOption=REPLY_MESSAGE_FALLBACK_TO_NEW_THREAD" in r.query for r in posts(receiver, "google-chat")
    )
    # no threads: later posts link the first when its link is known (the webhook receiver gave one)
    links = field("webhook", 1, lambda r: (r.body.get("first_post") or {}).get("url"))
    assert links[0] is None and links[1] == links[2] and links[1].startswith("https://intranet.example.com/p/")
    assert field("webhook", 2, lambda r: r.body.get("first_post")) == [None]
    assert all("content" not in r.body for r in posts(receiver, "discord"))  # Discord gives no link: post anew

    # lineage: event → delivery → the remote post that resulted
    slack_deliveries = (await client.get("/api/v1/deliveries", params={"target_id": targets["slack-api"]})).json()
    assert sorted(d["remote_id"] for d in slack_deliveries) == sorted(f"1712.{n:04d}" for n in range(1, 5))
    yammer_deliveries = (await client.get("/api/v1/deliveries", params={"target_id": targets["viva-engage"]})).json()
    assert all(d["remote_url"] == f"https://yam.example/m/{int(d['remote_id']) - 1000}" for d in yammer_deliveries)
    event_id = yammer_deliveries[-1]["event_id"]  # the oldest: issue 1 opened
    detail = (await client.get(f"/api/v1/events/{event_id}")).json()
    assert {d["target_id"]: d["remote_id"] for d in detail["deliveries"]}[targets["slack-api"]] == slack[1]

    async with runtime.engine.connect() as conn:
        anchors = (await conn.execute(sa.select(t.thread_anchors))).mappings().all()
    by_target: dict[str, int] = {}
    for a in anchors:
        by_target[a["target_id"]] = by_target.get(a["target_id"], 0) + 1
    assert by_target == {targets["slack-api"]: 2, targets["viva-engage"]: 2, targets["webhook"]: 2}


@pytest.mark.parametrize(
    ("kind", "limited", "asked"),
    [
        ("slack-api", _json(200, {"ok": False, "error": "ratelimited"}, Retry_After="1"), 1.0),
        (
            "discord",
            _json(
                429, {"message": "You are being rate limited.", "retry_after": 1.5, "global": False}, Retry_After="1"
            ),
            1.5,
        ),
    ],
)
async def test_a_rate_limited_first_post_holds_its_thread_and_is_retried_no_earlier_than_asked(
    client: httpx.AsyncClient, receiver: Receiver, kind: str, limited: Answer, asked: float
) -> None:
    receiver.respond = FakeRse({kind: [limited]})
    target = {"kind": kind, "name": kind, "retry_schedule": [0.1, 0.1, 0.1], **settings_for(kind, receiver.base)}
    ids = await create_pipeline(client, target)
    await send(client, ids["source_id"], github_issue(1, "opened"))
    await send(client, ids["source_id"], comment(1), "issue_comment")
    await wait_for(lambda: delivered(client, 2), timeout=15)
    first, again, second = receiver.requests
    assert first.status == limited[0] and "opened" in text(first) and "opened" in text(again)
    assert again.at - first.at >= asked  # the retry waited what the target asked
    assert "commented" in text(second) and second.at >= again.at  # the thread's later post waited its turn
    if kind == "slack-api":
        assert second.body["thread_ts"] == "1712.0001"  # and replies to the first post's ts


async def test_a_gone_webhook_disables_its_target_with_a_visible_reason(
    client: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.script = [(404, {})]
    ids = await create_pipeline(client, {"kind": "mattermost", "name": "mm", "url": f"{receiver.base}/hooks/k"})
    await send(client, ids["source_id"], github_issue(1, "opened"))
    breaker = f"/api/v1/targets/{ids['target_id']}/breaker"

    async def disabled() -> bool:
        return (await client.get(breaker)).json()["state"] == "disabled"

    await wait_for(disabled)
    reason = (await client.get(breaker)).json()["reason"]
    assert reason.startswith("HTTP 404") and "gone" in reason
    assert (await client.get(f"/api/v1/targets/{ids['target_id']}")).json()["disabled_reason"] == reason
    assert (await client.post(f"{breaker}/reset")).json()["reason"] is None


async def test_moving_a_target_elsewhere_starts_its_threads_anew(client: httpx.AsyncClient, runtime: Runtime) -> None:
    tgt = await create(
        client, "/api/v1/targets", {"kind": "slack-api", "name": "s", "token": "xoxb-1", "channel": "C1"}
    )
    row = {"target_id": tgt["id"], "thread_hash": "h", "thread_key": "k", "remote_id": "1712.0001"}

    async def anchors() -> int:
        async with runtime.engine.connect() as conn:
            return len((await conn.execute(sa.select(t.thread_anchors))).all())

    async with runtime.engine.begin() as conn:
        await conn.execute(t.thread_anchors.insert().values(**row, delivery_id="dlv_1", created_at=0.0))
    assert (await client.patch(f"/api/v1/targets/{tgt['id']}", json={"token": "xoxb-2"})).status_code == 200
    assert await anchors() == 1  # a rotated token keeps the threads
    assert (await client.patch(f"/api/v1/targets/{tgt['id']}", json={"channel": "C2"})).status_code == 200
    assert await anchors() == 0  # a thread_ts of channel C1 means nothing in C2
