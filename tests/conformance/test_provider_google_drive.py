"""Google Drive push notifications, as https://developers.google.com/workspace/drive/api/guides/push describes
them: an empty body, everything in ``X-Goog-*`` headers, the channel token echoed in ``X-Goog-Channel-Token``,
a ``sync`` message first (message number 1), message numbers increasing per channel, and states the doc
may add later ("gracefully ignore these")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.parse import ParseError
from hub.connectors.verify import RawRequest, VerificationError
from tests.conformance.kit import FIXTURES as FIXTURE_DIR
from tests.conformance.kit import load
from tests.conftest import create, wait_for

SPEC = builtin_catalogue().get("google-drive")
assert SPEC is not None
HOOKS = hooks_for(SPEC)
TOKEN = "3a98f1a2b3c4d5e6f7"


def headers(name: str, **changes: str) -> dict[str, str]:
    found: dict[str, str] = load(FIXTURE_DIR / "google-drive" / f"{name}.json")["headers"]
    return {**found, **changes}


def raw(hdrs: dict[str, str]) -> RawRequest:
    return RawRequest(body=b"", headers={k.lower(): v for k, v in hdrs.items()})


def split(hdrs: dict[str, str]) -> Any:
    req = raw(hdrs)
    ctx = SourceContext("src_1", TOKEN)
    HOOKS.verify(SPEC, ctx, TOKEN, req, 0.0)
    return HOOKS.split(SPEC, ctx, req, 0.0)


def test_the_payload_is_built_from_the_headers_without_the_token() -> None:
    """The doc's "Headers" table: channel id, message number, resource id / URI / state, changed, expiration."""
    [event] = split(headers("update.permissions"))
    assert event.payload == {
        "channel": {"id": "4ba78bf0-6a47-11e2-bcfd-0800200c9a66", "expiration": "Tue, 19 Nov 2013 01:13:52 GMT"},
        "message_number": 15,
        "resource": {
            "id": "ret08u3rv24htgh289g",
            "uri": "https://www.googleapis.com/drive/v3/files/ret08u3rv24htgh289g",
            "state": "update",
            "kind": "file",
            "file_id": "ret08u3rv24htgh289g",
            "drive_id": "",
            "url": "https://drive.google.com/open?id=ret08u3rv24htgh289g",
        },
        "changed": ["content", "permissions"],  # "content, permissions" as the doc's example writes it
    }
    assert event.own_payload and TOKEN not in str(event.payload)


def test_the_changes_example_of_the_doc_says_changed_and_is_the_change_event() -> None:
    """The doc's table names the state ``change``; its example for a ``changes`` resource prints ``changed``."""
    [event] = split(headers("change"))
    assert (event.type, event.ignored) == ("change", False)
    assert event.payload["resource"]["kind"] == "changes"


def test_a_state_google_adds_later_is_stored_not_routed() -> None:
    """Doc: "Additional resource state events might be added ... Your event handlers should gracefully ignore these"."""
    [event] = split(headers("update", **{"X-Goog-Resource-State": "archive"}))
    assert (event.type, event.ignored) == ("archive", True)


def test_the_dedup_key_is_the_channel_and_the_message_number() -> None:
    first = split(headers("add"))[0]
    again = split(headers("add"))[0]
    later = split(headers("add", **{"X-Goog-Message-Number": "16"}))[0]
    other_channel = split(headers("add", **{"X-Goog-Channel-ID": "01234567-89ab-cdef-0123456789ab"}))[0]
    assert first.dedup_key == again.dedup_key == "4ba78bf0-6a47-11e2-bcfd-0800200c9a66:10"
    assert len({first.dedup_key, later.dedup_key, other_channel.dedup_key}) == 3


@pytest.mark.parametrize("number", ["\u00b9", "1e3", "99999999999999999999999"])
def test_a_message_number_that_is_not_a_plain_integer_stays_text(number: str) -> None:
    """Headers arrive as latin-1: "¹" is a digit to Python, not an integer; nothing here may crash (a 500)."""
    [event] = split(headers("add", **{"X-Goog-Message-Number": number}))
    assert event.payload["message_number"] == number
    assert event.dedup_key == f"4ba78bf0-6a47-11e2-bcfd-0800200c9a66:{number}"


def test_without_the_state_header_it_is_a_400() -> None:
    hdrs = {k: v for k, v in headers("add").items() if k != "X-Goog-Resource-State"}
    with pytest.raises(ParseError) as info:
        split(hdrs)
    assert info.value.code == "missing_event_type"


@pytest.mark.parametrize(
    ("token", "code"), [(None, "missing_signature"), ("wrong-token", "bad_signature"), (TOKEN + " ", "bad_signature")]
)
def test_the_channel_token_must_equal_the_secret(token: str | None, code: str) -> None:
    hdrs = {k: v for k, v in headers("add").items() if k != "X-Goog-Channel-Token"}
    if token is not None:
        hdrs["X-Goog-Channel-Token"] = token
    with pytest.raises(VerificationError) as info:
        HOOKS.verify(SPEC, SourceContext("src_1", TOKEN), TOKEN, raw(hdrs), 0.0)
    assert info.value.code == code


# --- through the app ---------------------------------------------------------------------------------------


async def drive_source(client: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    src = await create(client, "/api/v1/sources", {"connector": "google-drive", "name": "drive", "secret": TOKEN})
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "inbox"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["*"]})
    return src, inbox


async def test_sync_is_answered_2xx_stored_and_never_delivered(client: httpx.AsyncClient) -> None:
    """Doc, "Sync message": sent when the channel is created; "It's safe to ignore the sync notification"."""
    src, _ = await drive_source(client)
    resp = await client.post(f"/hooks/{src['id']}", content=b"", headers=headers("sync"))
    assert resp.status_code == 202, resp.text
    [event] = (await client.get("/api/v1/events", params={"source_id": src["id"]})).json()
    assert (event["type"], event["status"]) == ("sync", "ignored")
    assert (await client.get("/api/v1/inbox")).json() == []


async def test_a_notification_is_stored_delivered_and_a_redelivery_is_a_duplicate(client: httpx.AsyncClient) -> None:
    """Google retries on 5xx ("Respond to notifications"): the same channel and message number is one event;
    the next message number is a new one."""
    src, _ = await drive_source(client)
    first = await client.post(f"/hooks/{src['id']}", content=b"", headers=headers("add"))
    assert first.status_code == 202, first.text
    again = await client.post(f"/hooks/{src['id']}", content=b"", headers=headers("add"))
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    later = await client.post(f"/hooks/{src['id']}", content=b"", headers=headers("update"))
    assert later.status_code == 202

    async def two_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 2

    await wait_for(two_posts)
    posts = (await client.get("/api/v1/inbox")).json()
    assert {p["post"]["thread_key"] for p in posts} == {"google-drive:ret08u3rv24htgh289g"}
    detail = (await client.get(f"/api/v1/events/{first.json()['event_id']}")).json()
    assert detail["payload"]["resource"]["url"] == "https://drive.google.com/open?id=ret08u3rv24htgh289g"
    assert "x-goog-channel-token" not in detail["headers"]  # the token is the source's secret: never stored


async def test_a_wrong_token_is_401(client: httpx.AsyncClient) -> None:
    src, _ = await drive_source(client)
    wrong = headers("add", **{"X-Goog-Channel-Token": "x"})
    resp = await client.post(f"/hooks/{src['id']}", content=b"", headers=wrong)
    assert (resp.status_code, resp.json()["error"]["code"]) == (401, "bad_signature")
