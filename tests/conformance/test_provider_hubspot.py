"""HubSpot as HubSpot documents it, beyond the generic suite.

- Signatures: https://developers.hubspot.com/docs/api/webhooks/validating-requests (v1, v2 GET and POST
  examples; v3 with the table of characters decoded in the URI and the 5-minute limit), the FAQ pages
  https://developers.hubspot.com/docs/faq/v1-request-validation and …/v2-request-validation, and the
  official SDK's tests (HubSpot/hubspot-api-python tests/spec/utils/test_signature.py: v1, v2, v3 vectors).
- Batches: https://developers.hubspot.com/docs/api/webhooks#webhook-payloads ("up to 100" events a request,
  ``attemptNumber`` increasing on each retry of the same events).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.hooks.hubspot import legacy_signature, v3_signature, v3_uri
from hub.connectors.verify import RawRequest, VerificationError
from tests.conformance.kit import CATALOGUE
from tests.conformance.signers import hubspot as signer
from tests.conftest import create, make_settings, running_app, wait_for

SPEC = CATALOGUE.get("hubspot")
assert SPEC is not None
HOOKS = hooks_for(SPEC)
SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"  # the docs' and the SDK's example client secret
DOC_URI = "https://www.example.com/webhook_uri"
DOC_V1_BODY = (
    b'[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,'
    b'"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM",'
    b'"changeFlag":"NEW","appId":54321}]'
)
SDK_BODY = b"{'example_field':'example_value'}"  # the SDK tests' body, quotes as they are
SDK_V3_TS = "15000000"  # milliseconds, as in the SDK's v3 test


def raw(body: bytes, headers: dict[str, str], method: str = "POST", url: str = DOC_URI) -> RawRequest:
    return RawRequest(body=body, headers={k.lower(): v for k, v in headers.items()}, method=method, url=url)


def check(req: RawRequest, now: float, secret: str = SECRET) -> None:
    HOOKS.verify(SPEC, SourceContext("src_h", secret, {}, req.url), secret, req, now)


def code_of(req: RawRequest, now: float, secret: str = SECRET) -> str:
    with pytest.raises(VerificationError) as info:
        check(req, now, secret)
    return info.value.code


def v1(body: bytes, signature: str) -> RawRequest:
    return raw(body, {"X-HubSpot-Signature": signature, "X-HubSpot-Signature-Version": "v1"})


# --- official vectors --------------------------------------------------------------------------------------


def test_docs_v1_vector() -> None:
    """validating-requests, "v1 request signature examples": secret + body → 232db261…"""
    expected = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
    assert legacy_signature(SECRET, "v1", "POST", DOC_URI, DOC_V1_BODY) == expected
    check(v1(DOC_V1_BODY, expected), time.time())


def test_docs_v2_get_vector() -> None:
    """validating-requests, "Example for a GET request": secret + GET + URI, no body → eee2dddc…"""
    expected = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
    assert legacy_signature(SECRET, "v2", "GET", DOC_URI, b"") == expected
    req = raw(b"", {"X-HubSpot-Signature": expected, "X-HubSpot-Signature-Version": "v2"}, method="GET")
    check(req, time.time())


def test_docs_v2_post_vector() -> None:
    """validating-requests, "Example for a POST request": body {"example_field":"example_value"} → 9569219f…"""
    body = b'{"example_field":"example_value"}'
    expected = "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
    assert legacy_signature(SECRET, "v2", "POST", DOC_URI, body) == expected
    check(raw(body, {"X-HubSpot-Signature": expected, "X-HubSpot-Signature-Version": "v2"}), time.time())


def test_sdk_v1_and_v2_vectors() -> None:
    """hubspot-api-python tests: get_signature v1 → 69fc6631…, v2 (POST) → 4fe4e3a7…"""
    sig_v1 = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
    sig_v2 = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
    assert legacy_signature(SECRET, "v1", "POST", DOC_URI, SDK_BODY) == sig_v1
    assert legacy_signature(SECRET, "v2", "POST", DOC_URI, SDK_BODY) == sig_v2
    check(v1(SDK_BODY, sig_v1), time.time())
    check(raw(SDK_BODY, {"X-HubSpot-Signature": sig_v2, "X-HubSpot-Signature-Version": "v2"}), time.time())


def test_sdk_v3_vector() -> None:
    """hubspot-api-python tests: v3, POST, timestamp 15000000 (ms) → HPW73RUt…; hub verifies it at that time."""
    expected = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
    assert v3_signature(SECRET, "POST", DOC_URI, SDK_BODY, SDK_V3_TS) == expected
    headers = {"X-HubSpot-Signature-v3": expected, "X-HubSpot-Request-Timestamp": SDK_V3_TS}
    check(raw(SDK_BODY, headers), now=15000.0 + 60)  # a minute after it was signed
    assert code_of(raw(SDK_BODY, headers), now=15000.0 + 301) == "stale_timestamp"


def test_the_signer_agrees_with_the_sdk_vector() -> None:
    assert signer.v3(SECRET, "POST", DOC_URI, SDK_BODY, SDK_V3_TS) == "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="


# --- v3: milliseconds, 5 minutes, the decoded URI ----------------------------------------------------------


def v3_req(
    body: bytes, ts_ms: str, url: str = DOC_URI, secret: str = SECRET, signed_url: str | None = None
) -> RawRequest:
    sig = signer.v3(secret, "POST", signed_url or url, body, ts_ms)
    return raw(body, {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": ts_ms}, url=url)


@pytest.mark.parametrize("age_s", [0, 1, 120, 299, -120, -299])
def test_v3_within_five_minutes_passes(age_s: int) -> None:
    now = 1_700_000_000.0
    check(v3_req(DOC_V1_BODY, str(int((now - age_s) * 1000))), now)


@pytest.mark.parametrize("age_s", [301, 3600, -301, -3600])
def test_v3_older_than_five_minutes_or_ahead_is_stale(age_s: int) -> None:
    """ "Reject the request if the timestamp is older than 5 minutes"; one from the future is refused too."""
    now = 1_700_000_000.0
    assert code_of(v3_req(DOC_V1_BODY, str(int((now - age_s) * 1000))), now) == "stale_timestamp"


def test_v3_timestamp_is_milliseconds_not_seconds() -> None:
    """A timestamp in seconds reads as January 1970 in milliseconds: refused, although signed correctly."""
    now = 1_700_000_000.0
    assert code_of(v3_req(DOC_V1_BODY, str(int(now))), now) == "stale_timestamp"


@pytest.mark.parametrize("ts", ["yesterday", "nan", "inf", ""])
def test_v3_unreadable_timestamp(ts: str) -> None:
    expected = "missing_signature" if ts == "" else "bad_timestamp"
    assert code_of(v3_req(DOC_V1_BODY, ts), 1_700_000_000.0) == expected


def test_v3_uri_decodes_exactly_the_characters_of_the_docs_table() -> None:
    encoded = "https://hub.example.com/hooks/src_1?a=%3A%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%26%3D%25"
    assert v3_uri(encoded) == "https://hub.example.com/hooks/src_1?a=:/?@!$'()*,;&b=%20%26%3D%25"
    assert v3_uri("https://h/x?q=%3a%2f") == "https://h/x?q=:/"  # percent-encoding hex is case-insensitive


def test_v3_signature_over_the_decoded_uri_verifies_on_the_encoded_request_url() -> None:
    now = 1_700_000_000.0
    url = "https://hub.example.com/hooks/src_1?portal=acme%3Aeu&next=%2Fdeals"
    ts = str(int(now * 1000))
    check(v3_req(DOC_V1_BODY, ts, url=url, signed_url=signer.doc_decoded(url)), now)
    # HubSpot signs the decoded form: a signature over the raw, encoded URI is not HubSpot's
    raw_sig = base64.b64encode(
        hmac.new(SECRET.encode(), b"POST" + url.encode() + DOC_V1_BODY + ts.encode(), hashlib.sha256).digest()
    ).decode()
    req = raw(DOC_V1_BODY, {"X-HubSpot-Signature-v3": raw_sig, "X-HubSpot-Request-Timestamp": ts}, url=url)
    assert code_of(req, now) == "bad_signature"


def test_v3_covers_method_uri_and_body() -> None:
    now = 1_700_000_000.0
    ts = str(int(now * 1000))
    good = v3_req(DOC_V1_BODY, ts)
    check(good, now)
    other_url = RawRequest(good.body, good.headers, good.method, DOC_URI + "?x=1")
    assert code_of(other_url, now) == "bad_signature"
    assert code_of(RawRequest(good.body, good.headers, "PUT", DOC_URI), now) == "bad_signature"
    assert code_of(RawRequest(good.body + b" ", good.headers, "POST", DOC_URI), now) == "bad_signature"


# --- versions together -------------------------------------------------------------------------------------


def test_v3_decides_when_present_with_the_older_signature() -> None:
    """HubSpot sends v1 beside v3 "for backwards compatibility": a valid v3 passes whatever v1 says, and a
    bad v3 is refused even with a valid v1 (no downgrade to the signature without a timestamp)."""
    now = 1_700_000_000.0
    good_v3 = v3_req(DOC_V1_BODY, str(int(now * 1000)))
    good_v1 = legacy_signature(SECRET, "v1", "POST", DOC_URI, DOC_V1_BODY)
    both = dict(good_v3.headers) | {"x-hubspot-signature": "0" * 64, "x-hubspot-signature-version": "v1"}
    check(RawRequest(DOC_V1_BODY, both, "POST", DOC_URI), now)
    bad_v3 = both | {
        "x-hubspot-signature-v3": "AAAA" + both["x-hubspot-signature-v3"][4:],
        "x-hubspot-signature": good_v1,
    }
    assert code_of(RawRequest(DOC_V1_BODY, bad_v3, "POST", DOC_URI), now) == "bad_signature"


def test_v1_and_v2_refusals() -> None:
    now = time.time()
    sig = legacy_signature(SECRET, "v1", "POST", DOC_URI, DOC_V1_BODY)
    assert code_of(v1(DOC_V1_BODY, sig), now, secret="wrong") == "bad_signature"
    assert code_of(v1(DOC_V1_BODY + b" ", sig), now) == "bad_signature"
    no_version = raw(DOC_V1_BODY, {"X-HubSpot-Signature": sig})
    assert code_of(no_version, now) == "bad_signature"
    v9 = raw(DOC_V1_BODY, {"X-HubSpot-Signature": sig, "X-HubSpot-Signature-Version": "v9"})
    assert code_of(v9, now) == "bad_signature"
    # v1 does not cover the URI, v2 does
    v2 = legacy_signature(SECRET, "v2", "POST", DOC_URI, DOC_V1_BODY)
    moved = raw(DOC_V1_BODY, {"X-HubSpot-Signature": v2, "X-HubSpot-Signature-Version": "v2"}, url=DOC_URI + "2")
    assert code_of(moved, now) == "bad_signature"
    assert code_of(raw(DOC_V1_BODY, {}), now) == "missing_signature"


# --- batches -----------------------------------------------------------------------------------------------


def split(body: bytes) -> list[Any]:
    req = raw(body, {})
    return HOOKS.split(SPEC, SourceContext("src_h", SECRET, {}, DOC_URI), req, 0.0)


def item(event_id: int, **kw: Any) -> dict[str, Any]:
    base = {"eventId": event_id, "subscriptionId": 7, "portalId": 62515, "occurredAt": 1712052004913}
    return base | {"subscriptionType": "deal.propertyChange", "attemptNumber": 0, "objectId": 55} | kw


def test_a_batch_is_one_event_per_item_each_with_its_own_payload() -> None:
    items = [item(1), item(2, objectId=56, subscriptionType="deal.creation")]
    events = split(json.dumps(items).encode())
    assert [e.payload for e in events] == items and all(e.own_payload for e in events)
    assert [(e.type, e.dedup_key, e.subject) for e in events] == [
        ("deal.propertyChange", "62515/7/1", "62515/deal/55"),
        ("deal.creation", "62515/7/2", "62515/deal/56"),
    ]


def test_a_retry_has_the_same_dedup_keys_although_attempt_number_changed() -> None:
    first = split(json.dumps([item(1), item(2)]).encode())
    retry = split(json.dumps([item(1, attemptNumber=1), item(2, attemptNumber=1)]).encode())
    assert [e.dedup_key for e in first] == [e.dedup_key for e in retry]


def test_event_ids_of_different_accounts_or_subscriptions_stay_apart() -> None:
    """HubSpot: eventId "is not guaranteed to be unique"."""
    keys = {e.dedup_key for e in split(json.dumps([item(1), item(1, portalId=99), item(1, subscriptionId=8)]).encode())}
    assert len(keys) == 3


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (json.dumps([item(i) for i in range(101)]), "too_many_events"),
        (json.dumps([item(1), "not an object"]), "unparseable_body"),
        (json.dumps([{k: v for k, v in item(1).items() if k != "subscriptionType"}]), "missing_event_type"),
        ("[{", "unparseable_body"),
    ],
)
def test_malformed_batches_are_refused(body: str, code: str) -> None:
    from hub.connectors.parse import ParseError

    with pytest.raises(ParseError) as info:
        split(body.encode())
    assert info.value.code == code


def test_a_hundred_events_are_accepted() -> None:
    assert len(split(json.dumps([item(i) for i in range(100)]).encode())) == 100


def test_generic_object_subscriptions_name_the_object_type() -> None:
    (ev,) = split(json.dumps([item(1, subscriptionType="object.creation", objectTypeId="0-3")]).encode())
    assert ev.subject == "62515/0-3/55"
    view = HOOKS.view(SPEC, ev.type, ev.payload)
    assert view["object"]["url"] == "https://app.hubspot.com/contacts/62515/record/0-3/55"
    assert view["action"] == "created"


def test_the_view_names_won_lost_and_stage_moves() -> None:
    def action(stage: str) -> tuple[str, str]:
        view = HOOKS.view(SPEC, "deal.propertyChange", item(1, propertyName="dealstage", propertyValue=stage))
        return view["action"], view["object"]["state"]

    assert action("closedwon") == ("won", "closedwon")
    assert action("closedlost") == ("lost", "closedlost")
    assert action("contractsent") == ("stage_changed", "contractsent")
    other = HOOKS.view(SPEC, "deal.propertyChange", item(1, propertyName="amount", propertyValue="5"))
    assert (other["action"], other["object"]["kind"], other["actor"]["id"]) == ("updated", "deal", "")


# --- through the app ---------------------------------------------------------------------------------------


def signed_v3(url: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time() * 1000))
    return {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": signer.v3(SECRET, "POST", url, body, ts),
        "X-HubSpot-Request-Timestamp": ts,
        # what HubSpot sends beside v3
        "X-HubSpot-Signature": legacy_signature(SECRET, "v1", "POST", url, body),
        "X-HubSpot-Signature-Version": "v1",
    }


async def test_a_batch_through_the_app_and_its_retry(client: httpx.AsyncClient) -> None:
    src = await create(client, "/api/v1/sources", {"connector": "hubspot", "name": "hs", "secret": SECRET})
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "i"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["deal.*"]})
    items = [
        item(10, subscriptionType="deal.creation"),
        item(11, propertyName="dealstage", propertyValue="closedwon"),
    ]
    body = json.dumps(items).encode()
    resp = await client.post(src["ingest_url"], content=body, headers=signed_v3(src["ingest_url"], body))
    assert resp.status_code == 202, resp.text
    assert len(resp.json()["event_ids"]) == 2

    async def two_posts() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 2

    await wait_for(two_posts)
    posts = (await client.get("/api/v1/inbox")).json()
    assert {p["post"]["title"] for p in posts} == {"New deal in HubSpot", "Deal won 🎉"}
    assert {p["post"]["thread_key"] for p in posts} == {"hubspot:62515/deal/55"}
    # HubSpot retries the same events with attemptNumber 1: nothing new is stored or delivered
    retry = json.dumps([i | {"attemptNumber": 1} for i in items]).encode()
    again = await client.post(src["ingest_url"], content=retry, headers=signed_v3(src["ingest_url"], retry))
    assert again.status_code == 200 and again.json()["duplicates"] == 2
    assert len((await client.get("/api/v1/events", params={"source_id": src["id"]})).json()) == 2


async def test_the_signed_uri_is_the_public_ingest_url(tmp_path: Path) -> None:
    """Behind a proxy HubSpot signs the URL it was given (HUB_PUBLIC_URL), not the Host hub sees."""
    async with running_app(make_settings(tmp_path, public_url="https://hub.example.com/")) as (_, client):
        src = await create(client, "/api/v1/sources", {"connector": "hubspot", "name": "hs", "secret": SECRET})
        public = src["ingest_url"]
        assert public.startswith("https://hub.example.com/hooks/")
        body = json.dumps([item(1)]).encode()
        local = f"/hooks/{src['id']}"  # reaches hub as http://hub.test/hooks/…
        ok = await client.post(local, content=body, headers=signed_v3(public, body))
        assert ok.status_code == 202, ok.text
        body2 = json.dumps([item(2)]).encode()
        wrong = await client.post(local, content=body2, headers=signed_v3(f"http://hub.test{local}", body2))
        assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "bad_signature")
