"""Box Webhooks V2 signatures, as https://developer.box.com/guides/webhooks/v2/signatures-v2/ and the official
SDK's ``WebhooksManager.validate_message`` (box/box-python-sdk-gen, ``test/webhooks.py::testWebhookValidation``)
verify them: the SDK's published vectors, both keys (rotation), version and algorithm, a timestamp at most
10 minutes old and never in the future; and the body ``id`` as the dedup key ("When Box retries a webhook
this ID will not change, while the ID in the header changes between calls", handle/payload guide)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.verify import RawRequest, VerificationError
from tests.conftest import create, wait_for

SPEC = builtin_catalogue().get("box")
assert SPEC is not None
HOOKS = hooks_for(SPEC)

PRIMARY, SECONDARY, INCORRECT = "SamplePrimaryKey", "SampleSecondaryKey", "IncorrectKey"
SDK_BODY = (
    '{"type":"webhook_event","webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED",'
    '"source":{"id":"1234567890","type":"file","name":"Test.txt"}}'
)
SDK_TIMESTAMP = "2020-01-01T00:00:00-07:00"
SDK_PRIMARY = "6TfeAW3A1PASkgboxxA5yqHNKOwFyMWuEXny/FPD5hI="
SDK_SECONDARY = "v+1CD1Jdo3muIcbpv5lxxgPglOqMfsNHPV899xWYydo="
SDK_NOW = datetime(2020, 1, 1, 7, 1, tzinfo=UTC).timestamp()  # a minute after the delivery
# the SDK's other bodies: its signatures are over the body escaped as JSON \uXXXX (escape_body=True)
ESCAPED_VECTORS = [
    (
        '{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file",'
        '"name":"スクリーンショット 2020-08-05.txt"}}',
        "LV2uCu+5NJtIHrCXDYgZ0v/PP5THGRuegw3RtdnEyuE=",
    ),
    (
        '{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file",'
        '"name":"😀 2020-08-05.txt"}}',
        "xF/SDZosX4le+v4A0Qn59sZhuD1RqY5KRUKzVMSbh0E=",
    ),
    (
        '{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file",'
        '"name":"test \r"}}',
        "SVkbKgy3dEEf2PbbzpNu2lDZS7zZ/aboU7HOZgBGrJk=",
    ),
    (
        '{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file",'
        '"name":"\\/"}}',
        "t41PWT5ZB6OcysnD6SDy9Ud+p9hdXxIdXqcdweyZv/Q=",
    ),
    (
        '{"webhook":{"id":"1234567890"},"trigger":"FILE.UPLOADED","source":{"id":"1234567890","type":"file",'
        '"name":"\\"}}',
        "ERpMZwUQsGDTfj82ehdX6VvDZfvOhK5ULNfVmwVAGe0=",
    ),
]


def box_signature(key: str, body: bytes, timestamp: str) -> str:
    return base64.b64encode(hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).digest()).decode()


def sdk_headers(**changes: str | None) -> dict[str, str]:
    headers: dict[str, str | None] = {
        "box-delivery-id": "f96bb54b-ee16-4fc5-aa65-8c2d9e5b546f",
        "box-delivery-timestamp": SDK_TIMESTAMP,
        "box-signature-algorithm": "HmacSHA256",
        "box-signature-primary": SDK_PRIMARY,
        "box-signature-secondary": SDK_SECONDARY,
        "box-signature-version": "1",
        **changes,
    }
    return {k: v for k, v in headers.items() if v is not None}


def check(
    headers: dict[str, str],
    body: str | bytes = SDK_BODY,
    primary: str | None = PRIMARY,
    secondary: str | None = SECONDARY,
    now: float = SDK_NOW,
) -> None:
    raw = body.encode() if isinstance(body, str) else body
    settings = {"secondary_key": secondary} if secondary else {}
    ctx = SourceContext("src_1", primary, settings)
    HOOKS.verify(SPEC, ctx, primary, RawRequest(body=raw, headers=headers), now)


def code_of(headers: dict[str, str], **kwargs: Any) -> str:
    with pytest.raises(VerificationError) as info:
        check(headers, **kwargs)
    return info.value.code


def test_the_sdk_vectors_compute() -> None:
    assert box_signature(PRIMARY, SDK_BODY.encode(), SDK_TIMESTAMP) == SDK_PRIMARY
    assert box_signature(SECONDARY, SDK_BODY.encode(), SDK_TIMESTAMP) == SDK_SECONDARY


def test_the_sdk_vectors_verify_with_either_key() -> None:
    """SDK: validate_message(body, headers, primary, secondary) with one of the two keys wrong is still valid."""
    check(sdk_headers())
    check(sdk_headers(), primary=INCORRECT)  # rotation: the primary key is wrong, the secondary one right
    check(sdk_headers(), secondary=INCORRECT)
    check(sdk_headers(), secondary=None)  # no secondary key set: the primary is enough
    check(sdk_headers(**{"box-signature-primary": None}), primary=INCORRECT)  # only the secondary header sent
    assert code_of(sdk_headers(), primary=INCORRECT, secondary=INCORRECT) == "bad_signature"
    assert code_of(sdk_headers(**{"box-signature-secondary": None}), primary=INCORRECT) == "bad_signature"


@pytest.mark.parametrize(("body", "primary_signature"), ESCAPED_VECTORS, ids=["japanese", "emoji", "cr", "slash", "bs"])
def test_the_sdk_vectors_of_bodies_it_escapes_verify(body: str, primary_signature: str) -> None:
    """SDK: compute_webhook_signature(..., escape_body=True) for non-ASCII, control characters and backslashes;
    validate_message tries the body as sent, then escaped."""
    check(sdk_headers(**{"box-signature-primary": primary_signature}), body=body, secondary=None)
    with pytest.raises(VerificationError):
        check(sdk_headers(**{"box-signature-primary": primary_signature}), body=body + " ", secondary=None)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"box-signature-version": "2"}, "bad_signature"),  # SDK: headers_with_wrong_signature_version
        ({"box-signature-algorithm": "HmacSHA1"}, "bad_signature"),  # SDK: headers_with_wrong_signature_algorithm
        ({"box-signature-version": None}, "missing_signature"),
        ({"box-signature-algorithm": None}, "missing_signature"),
        ({"box-delivery-timestamp": None}, "missing_signature"),
        ({"box-signature-primary": None, "box-signature-secondary": None}, "missing_signature"),
        ({"box-delivery-timestamp": "yesterday"}, "bad_timestamp"),
        ({"box-delivery-timestamp": "2020-01-01T00:00:00"}, "bad_timestamp"),  # RFC 3339 needs an offset
    ],
)
def test_only_version_1_and_hmacsha256_with_their_headers(changes: dict[str, str | None], code: str) -> None:
    assert code_of(sdk_headers(**changes)) == code


@pytest.mark.parametrize(
    ("age", "accepted"),
    [(0, True), (599, True), (601, False), (1200, False), (-1, False), (-1200, False)],
)
def test_the_delivery_is_at_most_10_minutes_old_and_never_in_the_future(age: int, accepted: bool) -> None:
    """Guide, "Ensure valid timestamp": no older than ten minutes. SDK: a timestamp in the future is refused too
    (headers_with_future_datetime, now + 1200 s)."""
    now = 1_700_000_000.0
    stamp = datetime.fromtimestamp(now - age, UTC).isoformat(timespec="seconds")
    headers = sdk_headers(
        **{
            "box-delivery-timestamp": stamp,
            "box-signature-primary": box_signature(PRIMARY, SDK_BODY.encode(), stamp),
        }
    )
    if accepted:
        check(headers, now=now)
    else:
        assert code_of(headers, now=now) == "stale_timestamp"


def test_a_timestamp_with_another_offset_or_z_is_the_same_instant() -> None:
    for stamp in ("2020-01-01T07:00:00Z", "2020-01-01T08:00:00+01:00", "2020-01-01T07:00:00.000Z"):
        sig = box_signature(PRIMARY, SDK_BODY.encode(), stamp)
        check(sdk_headers(**{"box-delivery-timestamp": stamp, "box-signature-primary": sig}), secondary=None)


# --- through the app ---------------------------------------------------------------------------------------


def delivery(body: bytes, delivery_id: str, keys: tuple[str | None, str | None]) -> dict[str, str]:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    headers = {
        "Content-Type": "application/json",
        "BOX-DELIVERY-ID": delivery_id,
        "BOX-DELIVERY-TIMESTAMP": stamp,
        "BOX-SIGNATURE-VERSION": "1",
        "BOX-SIGNATURE-ALGORITHM": "HmacSHA256",
    }
    for name, key in zip(("BOX-SIGNATURE-PRIMARY", "BOX-SIGNATURE-SECONDARY"), keys, strict=True):
        if key:
            headers[name] = box_signature(key, body, stamp)
    return headers


BODY = json.dumps(
    {
        "type": "webhook_event",
        "id": "eb0c4e06-751f-442c-86f8-fd5bb404dbec",
        "created_at": "2016-07-11T10:10:32-07:00",
        "trigger": "FILE.UPLOADED",
        "webhook": {"id": "53", "type": "webhook"},
        "created_by": {"type": "user", "id": "226067247", "name": "John Q. Developer", "login": "johnq@dev.name"},
        "source": {"id": "73835521473", "type": "file", "name": "Test-Image-3.png"},
    }
).encode()


async def test_rotation_and_retries_through_the_app(client: httpx.AsyncClient) -> None:
    """The secondary key is a secret setting (never returned); a signature by either key is accepted; a retry
    (new BOX-DELIVERY-ID, new timestamp, same body id) is a duplicate, not delivered twice."""
    src = await create(
        client,
        "/api/v1/sources",
        {"connector": "box", "name": "box", "secret": PRIMARY, "settings": {"secondary_key": SECONDARY}},
    )
    assert src["settings"] == {} and src["secret_settings_set"] == ["secondary_key"]
    inbox = await create(client, "/api/v1/targets", {"kind": "inbox", "name": "inbox"})
    await create(client, "/api/v1/routes", {"source_id": src["id"], "target_id": inbox["id"], "events": ["FILE.*"]})
    url = f"/hooks/{src['id']}"
    rotated = await client.post(url, content=BODY, headers=delivery(BODY, "d-1", (INCORRECT, SECONDARY)))
    assert rotated.status_code == 202, rotated.text
    retry = await client.post(url, content=BODY, headers=delivery(BODY, "d-2", (PRIMARY, SECONDARY)))
    assert (retry.status_code, retry.json()) == (200, {"event_id": rotated.json()["event_id"], "duplicate": True})
    wrong = await client.post(url, content=BODY, headers=delivery(BODY, "d-3", (INCORRECT, INCORRECT)))
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (401, "bad_signature")

    async def one_post() -> bool:
        return len((await client.get("/api/v1/inbox")).json()) == 1

    await wait_for(one_post)
    [post] = (await client.get("/api/v1/inbox")).json()
    assert post["post"]["title"] == "File uploaded: Test-Image-3.png"
    assert post["post"]["thread_key"] == "box:file:73835521473"
