"""Generic spec features: event types and dedup ids from ordered templates, a timestamp in the signed body
(seconds or milliseconds, a future tolerance of its own), and a token header a source names in a setting."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from pydantic import ValidationError

from hub.connectors.parse import ParseError, event_for
from hub.connectors.spec import ConnectorSpec, SignatureSpec
from hub.connectors.verify import RawRequest, VerificationError, verify

NOW = 1_700_000_000.0


def spec_of(**parts: Any) -> ConnectorSpec:
    return ConnectorSpec.model_validate(
        {"id": "t", "title": "T", "signature": {"scheme": "none"}, "events": {"*": "x"}, **parts}
    )


def event(spec: ConnectorSpec, payload: Any, headers: dict[str, str] | None = None) -> Any:
    body = json.dumps(payload).encode()
    return event_for(spec, RawRequest(body=body, headers=headers or {}), payload)


# --- event type from an ordered list of templates ----------------------------------------------------------

TYPE_TEMPLATES = ["{object_kind}.{object_attributes.action}", "{object_kind}.{action}", "{object_kind}", "{event}"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"object_kind": "issue", "object_attributes": {"action": "open"}}, "issue.open"),
        ({"object_kind": "release", "action": "create", "object_attributes": {}}, "release.create"),
        ({"object_kind": "push"}, "push"),
        ({"object_kind": "push", "object_attributes": {"action": ""}}, "push"),  # empty is absent
        ({"object_kind": "note", "object_attributes": {"action": {"x": 1}}}, "note"),  # objects are not text
        ({"event": "updated.deal"}, "updated.deal"),
        ({"object_kind": 7}, "7"),
    ],
)
def test_the_first_template_whose_fields_all_exist_is_the_type(payload: dict[str, Any], expected: str) -> None:
    spec = spec_of(event_type={"templates": TYPE_TEMPLATES, "required": True})
    assert event(spec, payload).type == expected


def test_a_header_comes_before_the_templates_and_the_templates_before_the_field() -> None:
    spec = spec_of(event_type={"header": "X-Type", "templates": ["{a}.{b}"], "field": "kind", "action_field": "b"})
    payload = {"a": "deal", "b": "won", "kind": "other"}
    assert event(spec, payload, {"x-type": "from-header"}).type == "from-header.won"
    assert event(spec, payload).type == "deal.won"  # a template's type gets no action appended
    assert event(spec, {"kind": "other", "b": "x"}).type == "other.x"
    assert event(spec, {}).type == "event"


def test_a_required_type_that_no_template_gives_is_refused_naming_where_it_was_looked_for() -> None:
    spec = spec_of(event_type={"templates": ["{meta.entity}.{meta.action}", "{event}"], "required": True})
    with pytest.raises(ParseError) as info:
        event(spec, {"meta": {"entity": "deal"}})
    assert info.value.code == "missing_event_type"
    assert "{meta.entity}.{meta.action} or {event}" in str(info.value)


# --- dedup id from templates -------------------------------------------------------------------------------


def test_dedup_templates_come_after_the_headers_and_the_field_and_before_the_hash() -> None:
    spec = spec_of(
        dedup={"header": "X-Delivery", "field": "id", "templates": ["{meta.entity}:{meta.id}"], "content_hash": True}
    )
    v2 = {"meta": {"entity": "deal", "id": "0b8f3c4e"}}
    assert event(spec, v2, {"x-delivery": "d-1"}).dedup_key == "d-1"
    assert event(spec, {**v2, "id": 5}).dedup_key == "5"
    assert event(spec, v2).dedup_key == "deal:0b8f3c4e"
    v1 = {"meta": {"object": "deal", "id": 5}}  # no meta.entity: the template does not apply
    assert event(spec, v1).dedup_key == "sha256:" + hashlib.sha256(json.dumps(v1).encode()).hexdigest()
    assert event(spec_of(dedup={"templates": ["{meta.entity}:{meta.id}"]}), v1).dedup_key is None


def test_a_long_templated_id_is_hashed_like_any_delivery_id() -> None:
    spec = spec_of(dedup={"templates": ["{a}"]})
    key = event(spec, {"a": "x" * 400}).dedup_key
    assert key is not None and key.startswith("sha256:")


# --- a timestamp in the signed body ------------------------------------------------------------------------

SECRET = "s3cret"
BODY_TS: dict[str, Any] = {
    "scheme": "hmac",
    "header": "Sig",
    "timestamp_field": "meta.sent",
    "timestamp_unit": "ms",
    "tolerance_seconds": 60,
    "future_tolerance_seconds": 5,
}


def signed(body: bytes, secret: str = SECRET) -> RawRequest:
    return RawRequest(body=body, headers={"sig": hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()})


def body_with(sent: Any) -> bytes:
    return json.dumps({"meta": {"sent": sent}, "type": "x"}).encode()


def code(sig: dict[str, Any], req: RawRequest, now: float = NOW, settings: dict[str, Any] | None = None) -> str:
    with pytest.raises(VerificationError) as info:
        verify(SignatureSpec.model_validate(sig), SECRET, req, now, settings)
    return info.value.code


@pytest.mark.parametrize("offset", [0, -59, -60, 5, 4.5])
def test_a_body_timestamp_in_ms_within_the_window_passes(offset: float) -> None:
    verify(SignatureSpec.model_validate(BODY_TS), SECRET, signed(body_with(int((NOW + offset) * 1000))), NOW)


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (int((NOW - 61) * 1000), "stale_timestamp"),  # too old
        (int((NOW - 3600) * 1000), "stale_timestamp"),
        (int((NOW + 6) * 1000), "stale_timestamp"),  # ahead of hub's clock by more than the future tolerance
        (int((NOW + 3600) * 1000), "stale_timestamp"),
        (None, "missing_signature"),  # present but null: missing
        ("soon", "bad_timestamp"),
        (True, "bad_timestamp"),
        ({"ms": 1}, "bad_timestamp"),
        ("1e999", "bad_timestamp"),
    ],
)
def test_a_body_timestamp_outside_the_window_or_not_a_number_is_refused(sent: Any, expected: str) -> None:
    assert code(BODY_TS, signed(body_with(sent))) == expected


def test_a_numeric_text_timestamp_is_read_as_a_number() -> None:
    verify(SignatureSpec.model_validate(BODY_TS), SECRET, signed(body_with(str(int(NOW * 1000)))), NOW)


def test_a_body_without_the_timestamp_is_missing_signature() -> None:
    assert code(BODY_TS, signed(b'{"type":"x"}')) == "missing_signature"
    assert code(BODY_TS, signed(b'{"meta":"flat"}')) == "missing_signature"


def test_the_signature_is_checked_before_the_body_is_read() -> None:
    """A tampered body is bad_signature, never a timestamp error; a signed body that is not JSON has no
    timestamp."""
    good = signed(body_with(int(NOW * 1000)))
    assert code(BODY_TS, RawRequest(body=good.body.replace(b'"', b"'", 1), headers=good.headers)) == "bad_signature"
    assert code(BODY_TS, signed(b"not json")) == "bad_timestamp"


def test_without_a_future_tolerance_the_window_is_the_same_both_ways() -> None:
    sig = {**BODY_TS, "future_tolerance_seconds": None}
    verify(SignatureSpec.model_validate(sig), SECRET, signed(body_with(int((NOW + 60) * 1000))), NOW)
    assert code(sig, signed(body_with(int((NOW + 61) * 1000)))) == "stale_timestamp"


def test_a_header_timestamp_may_count_milliseconds_too() -> None:
    sig = {"scheme": "hmac", "header": "Sig", "timestamp_header": "Ts", "timestamp_unit": "ms", "tolerance_seconds": 60}
    req = signed(b"{}")
    ok = RawRequest(body=req.body, headers={**req.headers, "ts": str(int(NOW * 1000))})
    verify(SignatureSpec.model_validate(sig), SECRET, ok, NOW)
    old = RawRequest(body=req.body, headers={**req.headers, "ts": str(int((NOW - 61) * 1000))})
    assert code(sig, old) == "stale_timestamp"


@pytest.mark.parametrize(
    "bad",
    [
        {"timestamp_header": "Ts", "timestamp_field": "ts"},
        {"future_tolerance_seconds": -1},
        {"timestamp_unit": "us"},
        {"header_setting": "header"},  # only for the token scheme
    ],
)
def test_signature_specs_that_cannot_work_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SignatureSpec.model_validate({"scheme": "hmac", "header": "Sig", **bad})


# --- a token header named by a source setting --------------------------------------------------------------

TOKEN: dict[str, Any] = {"scheme": "token", "header": "Authorization", "prefix": "Bearer ", "header_setting": "header"}


def req_with(headers: dict[str, str]) -> RawRequest:
    return RawRequest(body=b"{}", headers={k.lower(): v for k, v in headers.items()})


@pytest.mark.parametrize("settings", [{}, {"header": ""}, {"header": None}])
def test_without_the_setting_the_header_is_the_specs_with_its_prefix(settings: dict[str, Any]) -> None:
    spec = SignatureSpec.model_validate(TOKEN)
    verify(spec, SECRET, req_with({"Authorization": f"Bearer {SECRET}"}), NOW, settings)
    assert code(TOKEN, req_with({"Authorization": SECRET}), settings=settings) == "bad_signature"
    assert code(TOKEN, req_with({}), settings=settings) == "missing_signature"


def test_the_setting_names_the_header_and_its_value() -> None:
    settings = {"header": "X-Nc-Token:  hub <secret> v1"}
    spec = SignatureSpec.model_validate(TOKEN)
    verify(spec, SECRET, req_with({"X-Nc-Token": f"hub {SECRET} v1"}), NOW, settings)
    assert code(TOKEN, req_with({"X-Nc-Token": f"hub {SECRET}"}), settings=settings) == "bad_signature"
    assert code(TOKEN, req_with({"X-Nc-Token": "hub wrong v1"}), settings=settings) == "bad_signature"
    # the spec's own header no longer counts, even with the right value
    with pytest.raises(VerificationError) as info:
        verify(spec, SECRET, req_with({"Authorization": f"Bearer {SECRET}"}), NOW, settings)
    assert (info.value.code, info.value.message) == ("missing_signature", "header X-Nc-Token is missing")
    assert spec.token_header(settings) == ("X-Nc-Token", "hub <secret> v1")


@pytest.mark.parametrize("setting", ["no colon <secret>", "X-Token: constant", "Bad Name: <secret>", ": <secret>"])
def test_a_setting_that_names_no_header_or_leaves_the_secret_out_refuses_every_request(setting: str) -> None:
    """A value without <secret> would let anyone who reads the settings in: nothing passes."""
    settings = {"header": setting}
    assert code(TOKEN, req_with({"X-Token": "constant", "Authorization": f"Bearer {SECRET}"}), settings=settings) == (
        "bad_signature"
    )


def test_a_source_without_a_secret_is_refused_whatever_the_header_says() -> None:
    spec = SignatureSpec.model_validate(TOKEN)
    with pytest.raises(VerificationError) as info:
        verify(spec, None, req_with({"Authorization": "Bearer <secret>"}), NOW, {})
    assert info.value.code == "bad_signature"
