"""Stripe as Stripe documents it, beyond the generic suite.

https://docs.stripe.com/webhooks#verify-manually ("Verify signatures manually": t and v1 in
Stripe-Signature, the signed payload "<t>.<body>", HMAC-SHA256 with the endpoint's signing secret, a
tolerance against replays, several signatures while a secret is rolled) and the official SDK's tests
(stripe/stripe-python tests/test_webhook.py: malformed header, v0 only, a bad signature beside a good one,
timestamps outside the tolerance). Stripe publishes no fixed vector (its tests sign at the current time):
providers.md §4 derives one with the SDK's algorithm, reproduced here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import pytest

from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.hooks.stripe import parse_header, signature_of
from hub.connectors.verify import RawRequest, VerificationError
from tests.conformance.kit import CATALOGUE, FIXTURES, load
from tests.conformance.signers import stripe as signer
from tests.conftest import create

SPEC = CATALOGUE.get("stripe")
assert SPEC is not None
HOOKS = hooks_for(SPEC)
SECRET = "whsec_test_secret"  # stripe-python's DUMMY_WEBHOOK_SECRET
# stripe-python's DUMMY_WEBHOOK_PAYLOAD, whitespace as it is
SDK_PAYLOAD = b"""{
  "id": "evt_test_webhook",
  "object": "event",
  "data": { "object": { "id": "rdr_123", "object": "terminal.reader" } }
}"""
T = 1_700_000_000


def req(header: str | None, body: bytes = SDK_PAYLOAD) -> RawRequest:
    return RawRequest(body=body, headers={} if header is None else {"stripe-signature": header})


def check(request: RawRequest, now: float = T, secret: str = SECRET) -> None:
    HOOKS.verify(SPEC, SourceContext("src_s", secret, {}, ""), secret, request, now)


def code_of(request: RawRequest, now: float = T, secret: str = SECRET) -> str:
    with pytest.raises(VerificationError) as info:
        check(request, now, secret)
    return info.value.code


def test_derived_vector() -> None:
    """providers.md §4: whsec_test_secret, t=1700000000, the SDK's dummy payload → v1=3bfab77b…"""
    expected = "3bfab77baf5f7b6991a46c9b53b6547d7afc56148b10468fcad9f35c1992ffbd"
    assert signature_of(SECRET, str(T), SDK_PAYLOAD) == expected
    assert signer.header(SECRET, SDK_PAYLOAD, T) == f"t={T},v1={expected}"
    check(req(f"t={T},v1={expected}"))


def test_the_secret_is_used_as_utf8_not_base64_decoded() -> None:
    """Unlike Standard Webhooks, Stripe keys the HMAC with the whole whsec_… string."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # valid base64 after the prefix
    key = base64.b64decode(secret.removeprefix("whsec_"))
    as_base64 = hmac.new(key, f"{T}.".encode() + SDK_PAYLOAD, hashlib.sha256).hexdigest()
    assert code_of(req(f"t={T},v1={as_base64}"), secret=secret) == "bad_signature"
    check(req(signer.header(secret, SDK_PAYLOAD, T)), secret=secret)


def test_one_valid_v1_among_several_passes() -> None:
    """test_header_contains_valid_signature: a bad v1 appended; and during a roll, the old secret's first."""
    good = signer.header(SECRET, SDK_PAYLOAD, T)
    check(req(good + ",v1=bad_signature"))
    old = signature_of("whsec_old_secret", str(T), SDK_PAYLOAD)
    check(req(f"t={T},v1={old},{good.split(',')[1]}"))
    check(req(f"{good},v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"))  # v0 ignored


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("i'm not even a real signature header", "bad_timestamp"),  # "Unable to extract timestamp…"
        (f"t={T},v0={'0' * 64}", "bad_signature"),  # "No signatures found with expected scheme v1"
        (f"t={T},v1=bad_signature", "bad_signature"),  # "No signatures found matching the expected signature"
        (f"v1={signature_of(SECRET, str(T), SDK_PAYLOAD)}", "bad_timestamp"),  # no t
        (f"t=1.7e9,v1={signature_of(SECRET, '1.7e9', SDK_PAYLOAD)}", "bad_timestamp"),  # t is an integer
        (f"t={'9' * 40},v1={signature_of(SECRET, '9' * 40, SDK_PAYLOAD)}", "bad_timestamp"),
        ("", "missing_signature"),
    ],
)
def test_the_sdks_refusals(header: str, code: str) -> None:
    assert code_of(req(header)) == code


def test_a_missing_header_is_a_missing_signature() -> None:
    assert code_of(req(None)) == "missing_signature"


@pytest.mark.parametrize("offset", [0, 1, 299, 300, -300])
def test_within_the_tolerance(offset: int) -> None:
    check(req(signer.header(SECRET, SDK_PAYLOAD, T - offset)))


@pytest.mark.parametrize("offset", [301, 3600, -301])
def test_outside_the_tolerance_is_stale(offset: int) -> None:
    """300 s (the SDK's DEFAULT_TOLERANCE); hub also refuses a timestamp as far in the future."""
    assert code_of(req(signer.header(SECRET, SDK_PAYLOAD, T - offset))) == "stale_timestamp"


def test_the_timestamp_is_signed() -> None:
    good = signer.header(SECRET, SDK_PAYLOAD, T)
    moved = good.replace(f"t={T}", f"t={T + 10}")
    assert code_of(req(moved), now=T + 10) == "bad_signature"


def test_parse_header_keeps_the_first_t_and_every_v1() -> None:
    assert parse_header("t=1,v1=a, v1=b ,v0=c,t=2,junk") == ("1", ["a", "b"])


def test_the_view_names_the_action_and_a_dashboard_page() -> None:
    payload = load(FIXTURES / "stripe" / "customer.subscription.deleted.json")["payload"]
    view = HOOKS.view(SPEC, "customer.subscription.deleted", payload)
    assert view["action"] == "deleted"
    assert view["object"]["url"] == "https://dashboard.stripe.com/test/subscriptions/sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"
    live = HOOKS.view(SPEC, "customer.subscription.deleted", payload | {"livemode": True})
    assert live["object"]["url"] == "https://dashboard.stripe.com/subscriptions/sub_1Pgc6rB7WZ01zgkWNy0Cn5nw"


async def test_through_the_app_a_repeat_is_a_duplicate_and_an_untyped_event_is_400(
    client: httpx.AsyncClient,
) -> None:
    src = await create(client, "/api/v1/sources", {"connector": "stripe", "name": "s", "secret": SECRET})
    body = json.dumps(load(FIXTURES / "stripe" / "invoice.paid.json")["payload"]).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": signer.header(SECRET, body, int(time.time()))}
    first = await client.post(src["ingest_url"], content=body, headers=headers)
    assert first.status_code == 202, first.text
    # Stripe redelivers the same event (same id), signed again at a later time
    headers["Stripe-Signature"] = signer.header(SECRET, body, int(time.time()) + 1)
    again = await client.post(src["ingest_url"], content=body, headers=headers)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    headers["Stripe-Signature"] = signer.header(SECRET, SDK_PAYLOAD, int(time.time()))
    untyped = await client.post(src["ingest_url"], content=SDK_PAYLOAD, headers=headers)
    assert (untyped.status_code, untyped.json()["error"]["code"]) == (400, "missing_event_type")
