"""Slack's Events API as Slack documents it, beyond the generic suite.

- https://api.slack.com/authentication/verifying-requests-from-slack : v0 signature, its worked example
  (reproduced on the built-in connector), the 5-minute limit on X-Slack-Request-Timestamp.
- https://api.slack.com/events/url_verification : the challenge is answered with 200 and the challenge
  (JSON is one of the three documented answers), after the request's signature is checked.
- https://api.slack.com/apis/events-api : the event_callback envelope typed by its inner event; retries
  carry X-Slack-Retry-Num with the same event_id; https://api.slack.com/events/app_rate_limited .
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.parse import ParseError
from hub.connectors.verify import RawRequest, VerificationError
from tests.conformance.kit import CATALOGUE, FIXTURES, load
from tests.conformance.signers import slack as signer
from tests.conftest import create, wait_for

SPEC = CATALOGUE.get("slack")
assert SPEC is not None
HOOKS = hooks_for(SPEC)
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TS = 1531420618
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def raw(body: bytes, signature: str, ts: int | str) -> RawRequest:
    return RawRequest(body=body, headers={"x-slack-signature": signature, "x-slack-request-timestamp": str(ts)})


def check(req: RawRequest, now: float) -> None:
    HOOKS.verify(SPEC, SourceContext("src_sl", SECRET, {}, ""), SECRET, req, now)


def code_of(req: RawRequest, now: float) -> str:
    with pytest.raises(VerificationError) as info:
        check(req, now)
    return info.value.code


def test_the_docs_worked_example_verifies_on_the_slack_connector() -> None:
    assert signer.signature(SECRET, str(DOC_TS), DOC_BODY) == DOC_SIGNATURE
    check(raw(DOC_BODY, DOC_SIGNATURE, DOC_TS), DOC_TS + 5)


@pytest.mark.parametrize(
    ("signature", "ts", "now", "code"),
    [
        (DOC_SIGNATURE[:-1] + "4", DOC_TS, DOC_TS, "bad_signature"),
        (DOC_SIGNATURE, DOC_TS + 1, DOC_TS, "bad_signature"),  # the timestamp is signed
        (DOC_SIGNATURE.removeprefix("v0="), DOC_TS, DOC_TS, "bad_signature"),
        (DOC_SIGNATURE, DOC_TS, DOC_TS + 301, "stale_timestamp"),  # "more than five minutes" old
        (DOC_SIGNATURE, DOC_TS, DOC_TS - 301, "stale_timestamp"),  # or ahead
        (DOC_SIGNATURE, "soon", DOC_TS, "bad_timestamp"),
    ],
)
def test_refusals(signature: str, ts: int | str, now: float, code: str) -> None:
    assert code_of(raw(DOC_BODY, signature, ts), now) == code


def split(payload: Any) -> list[Any]:
    req = RawRequest(body=json.dumps(payload).encode(), headers={})
    return HOOKS.split(SPEC, SourceContext("src_sl", SECRET, {}, ""), req, 0.0)


def test_an_event_callback_is_typed_by_its_inner_event() -> None:
    (ev,) = split(load(FIXTURES / "slack" / "message.json")["payload"])
    assert (ev.type, ev.dedup_key, ev.ignored, ev.own_payload) == ("message", "Ev0PV52K21", False, False)


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"type": "event_callback", "event_id": "Ev1", "event": {"text": "no type"}}, "missing_event_type"),
        ({"token": "x"}, "missing_event_type"),
        (["not", "an", "object"], "unparseable_body"),
    ],
)
def test_bodies_without_a_type_are_refused(payload: Any, code: str) -> None:
    with pytest.raises(ParseError) as info:
        split(payload)
    assert info.value.code == code


def signed_headers(body: bytes, extra: dict[str, str] | None = None) -> dict[str, str]:
    ts = str(int(time.time()))
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signer.signature(SECRET, ts, body),
        **(extra or {}),
    }


async def slack_source(client: httpx.AsyncClient) -> dict[str, Any]:
    return await create(client, "/api/v1/sources", {"connector": "slack", "name": "sl", "secret": SECRET})


async def test_url_verification_is_answered_with_the_challenge_once_verified(client: httpx.AsyncClient) -> None:
    src = await slack_source(client)
    body = json.dumps(load(FIXTURES / "slack" / "url_verification.json")["payload"]).encode()
    resp = await client.post(src["ingest_url"], content=body, headers=signed_headers(body))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}
    assert (await client.get("/api/v1/events", params={"source_id": src["id"]})).json() == []
    # the handshake is signed too: an unsigned one is refused, the challenge never echoed
    forged = await client.post(src["ingest_url"], content=body, headers={"Content-Type": "application/json"})
    assert forged.status_code == 401 and "3eZbrw" not in forged.text


async def test_a_retry_of_the_same_event_is_not_delivered_twice(client: httpx.AsyncClient) -> None:
    src = await slack_source(client)
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["*"]})
    body = json.dumps(load(FIXTURES / "slack" / "channel_created.json")["payload"]).encode()
    first = await client.post(src["ingest_url"], content=body, headers=signed_headers(body))
    assert first.status_code == 202, first.text

    async def delivered() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 1

    await wait_for(delivered)
    retry = signed_headers(body, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    again = await client.post(src["ingest_url"], content=body, headers=retry)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    assert len((await client.get("/api/v1/inbox")).json()) == 1
    assert (await client.get("/api/v1/inbox")).json()[0]["post"]["title"] == "New Slack channel #fun"


async def test_app_rate_limited_is_accepted_and_never_routed(client: httpx.AsyncClient) -> None:
    src = await slack_source(client)
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["*"]})
    body = json.dumps(load(FIXTURES / "slack" / "app_rate_limited.json")["payload"]).encode()
    resp = await client.post(src["ingest_url"], content=body, headers=signed_headers(body))
    assert 200 <= resp.status_code < 300
    (stored,) = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert (stored["type"], stored["status"]) == ("app_rate_limited", "ignored")
