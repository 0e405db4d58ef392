"""Official signature test vectors (see /work/shared/reference/providers.md) run through hub's verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from standardwebhooks import Webhook

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.spec import ConnectorSpec, SignatureSpec
from hub.connectors.verify import RawRequest, VerificationError, compute_signature, decode_key, verify

CATALOGUE = builtin_catalogue()


def spec(connector_id: str) -> ConnectorSpec:
    found = CATALOGUE.get(connector_id)
    assert found is not None, f"built-in connector {connector_id} is missing"
    return found


def req(body: bytes, headers: dict[str, str]) -> RawRequest:
    return RawRequest(body=body, headers={k.lower(): v for k, v in headers.items()})


def code_of(sig: SignatureSpec, secret: str | None, request: RawRequest, now: float) -> str:
    with pytest.raises(VerificationError) as info:
        verify(sig, secret, request, now)
    return info.value.code


# --- GitHub -------------------------------------------------------------------------------------------------

GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_github_official_vector_computes() -> None:
    sig = spec("github").signature
    assert compute_signature(sig, decode_key(GH_SECRET, sig.key_encoding), GH_BODY) == GH_SIGNATURE


def test_github_official_vector_verifies() -> None:
    verify(spec("github").signature, GH_SECRET, req(GH_BODY, {"X-Hub-Signature-256": GH_SIGNATURE}), 0.0)


@pytest.mark.parametrize(
    "presented",
    [
        GH_SIGNATURE[:-1] + "8",  # one hex digit changed
        GH_SIGNATURE.removeprefix("sha256="),  # no prefix
        "sha1=" + GH_SIGNATURE.removeprefix("sha256="),  # wrong algorithm name
        "sha256=" + hmac.new(GH_SECRET.encode(), GH_BODY, hashlib.sha1).hexdigest(),  # legacy sha1 digest
        f"{GH_SIGNATURE} {GH_SIGNATURE}",  # GitHub sends one signature; no list
    ],
)
def test_github_vector_variants_are_rejected(presented: str) -> None:
    sig = spec("github").signature
    assert code_of(sig, GH_SECRET, req(GH_BODY, {"X-Hub-Signature-256": presented}), 0.0) == "bad_signature"


def test_github_legacy_sha1_header_alone_is_not_enough() -> None:
    legacy = "sha1=" + hmac.new(GH_SECRET.encode(), GH_BODY, hashlib.sha1).hexdigest()
    sig = spec("github").signature
    assert code_of(sig, GH_SECRET, req(GH_BODY, {"X-Hub-Signature": legacy}), 0.0) == "missing_signature"


def test_github_overrides_are_ignored() -> None:
    """GitHub allows no per-source overrides: a source cannot switch it to sha1 or to no verification."""
    github = spec("github")
    assert github.signature_for({"algorithm": "sha1", "header": "X-Hub-Signature", "scheme": "none"}) == (
        github.signature
    )


# --- Standard Webhooks ----------------------------------------------------------------------------------------

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_BAD = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="  # the libraries' negative vector


def sw_req(signature: str, ts: int | str = SW_TS, msg_id: str = SW_ID) -> RawRequest:
    return req(SW_BODY, {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature})


def test_standard_webhooks_official_vector_computes() -> None:
    sig = spec("standard-webhooks").signature
    content = f"{SW_ID}.{SW_TS}.".encode() + SW_BODY
    assert compute_signature(sig, decode_key(SW_SECRET, sig.key_encoding), content) == SW_SIGNATURE


def test_standard_webhooks_reference_library_agrees_with_the_vector() -> None:
    ts = datetime.fromtimestamp(SW_TS, tz=UTC)
    assert Webhook(SW_SECRET).sign(SW_ID, ts, SW_BODY.decode()) == SW_SIGNATURE


def test_standard_webhooks_official_vector_verifies() -> None:
    verify(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_SIGNATURE), SW_TS)


def test_standard_webhooks_secret_without_prefix_verifies() -> None:
    verify(spec("standard-webhooks").signature, SW_SECRET.removeprefix("whsec_"), sw_req(SW_SIGNATURE), SW_TS)


def test_standard_webhooks_negative_vector_is_rejected() -> None:
    assert code_of(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_BAD), SW_TS) == "bad_signature"


@pytest.mark.parametrize(
    "header",
    [
        f"{SW_BAD} {SW_SIGNATURE}",
        f"{SW_SIGNATURE} {SW_BAD}",
        f"v1a,{base64.b64encode(b'e' * 64).decode()} {SW_BAD} {SW_SIGNATURE}",
        f"v2,{SW_SIGNATURE[3:]} {SW_SIGNATURE}",
    ],
)
def test_standard_webhooks_one_valid_signature_among_several_passes(header: str) -> None:
    verify(spec("standard-webhooks").signature, SW_SECRET, sw_req(header), SW_TS)


@pytest.mark.parametrize(
    "header",
    [
        f"{SW_BAD} {SW_BAD}",
        f"v2,{SW_SIGNATURE[3:]}",  # the right digest under another version is not a v1 signature
        SW_SIGNATURE[3:],  # the digest without "v1,"
        SW_SIGNATURE.lower(),  # base64 is case-sensitive
    ],
)
def test_standard_webhooks_no_valid_signature_fails(header: str) -> None:
    assert code_of(spec("standard-webhooks").signature, SW_SECRET, sw_req(header), SW_TS) == "bad_signature"


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_standard_webhooks_timestamp_within_tolerance_passes(offset: int) -> None:
    verify(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_SIGNATURE), SW_TS + offset)


@pytest.mark.parametrize("offset", [-301, 301, -86400, 86400])
def test_standard_webhooks_timestamp_outside_tolerance_is_stale(offset: int) -> None:
    """Too old (replay) and too new (clock skew) are both refused, as the reference libraries do."""
    code = code_of(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_SIGNATURE), SW_TS + offset)
    assert code == "stale_timestamp"


def test_standard_webhooks_stale_check_happens_even_with_a_valid_signature_for_that_timestamp() -> None:
    """A captured delivery replayed an hour later is refused although its signature is genuine."""
    assert (
        code_of(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_SIGNATURE), SW_TS + 3600) == "stale_timestamp"
    )


def test_standard_webhooks_non_numeric_timestamp() -> None:
    code = code_of(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_SIGNATURE, ts="yesterday"), SW_TS)
    assert code == "bad_timestamp"


def test_standard_webhooks_nan_timestamp_is_refused() -> None:
    sig = spec("standard-webhooks").signature
    key = decode_key(SW_SECRET, sig.key_encoding)
    signature = compute_signature(sig, key, f"{SW_ID}.nan.".encode() + SW_BODY)
    with pytest.raises(VerificationError):
        verify(sig, SW_SECRET, sw_req(signature, ts="nan"), SW_TS)


def test_standard_webhooks_changed_message_id_is_rejected() -> None:
    code = code_of(spec("standard-webhooks").signature, SW_SECRET, sw_req(SW_SIGNATURE, msg_id="msg_other"), SW_TS)
    assert code == "bad_signature"


def test_standard_webhooks_secret_that_is_not_base64_is_a_bad_secret() -> None:
    code = code_of(spec("standard-webhooks").signature, "whsec_not base64!", sw_req(SW_SIGNATURE), SW_TS)
    assert code == "bad_secret"


def test_standard_webhooks_unpadded_secret_is_accepted() -> None:
    unpadded = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr"
    signature = Webhook(unpadded).sign(SW_ID, datetime.fromtimestamp(SW_TS, tz=UTC), SW_BODY.decode())
    verify(spec("standard-webhooks").signature, unpadded, sw_req(signature), SW_TS)


# --- generic HMAC with per-source overrides ---------------------------------------------------------------

GEN_SECRET = "shared-secret"
GEN_BODY = b'{"id":"evt_1","type":"invoice.paid","data":{"id":"in_1"}}'


def test_generic_defaults_are_sha256_hex_over_the_body() -> None:
    presented = hmac.new(GEN_SECRET.encode(), GEN_BODY, hashlib.sha256).hexdigest()
    verify(spec("generic-hmac").signature, GEN_SECRET, req(GEN_BODY, {"X-Signature": presented}), 0.0)
    # hex is compared case-insensitively: some senders upper-case their digests
    verify(spec("generic-hmac").signature, GEN_SECRET, req(GEN_BODY, {"X-Signature": presented.upper()}), 0.0)


SHA1_B64 = {"header": "X-Hook-Sig", "algorithm": "sha1", "encoding": "base64", "prefix": ""}


def test_generic_override_sha1_base64_without_prefix() -> None:
    sig = spec("generic-hmac").signature_for(SHA1_B64)
    assert (sig.header, sig.algorithm, sig.encoding, sig.prefix) == ("X-Hook-Sig", "sha1", "base64", "")
    presented = base64.b64encode(hmac.new(GEN_SECRET.encode(), GEN_BODY, hashlib.sha1).digest()).decode()
    verify(sig, GEN_SECRET, req(GEN_BODY, {"X-Hook-Sig": presented}), 0.0)


def test_generic_override_refuses_the_default_scheme() -> None:
    sig = spec("generic-hmac").signature_for(SHA1_B64)
    sha256_hex = hmac.new(GEN_SECRET.encode(), GEN_BODY, hashlib.sha256).hexdigest()
    assert code_of(sig, GEN_SECRET, req(GEN_BODY, {"X-Hook-Sig": sha256_hex}), 0.0) == "bad_signature"
    assert code_of(sig, GEN_SECRET, req(GEN_BODY, {"X-Signature": sha256_hex}), 0.0) == "missing_signature"


def test_generic_override_sha512_with_prefix() -> None:
    sig = spec("generic-hmac").signature_for({"algorithm": "sha512", "prefix": "sha512="})
    presented = "sha512=" + hmac.new(GEN_SECRET.encode(), GEN_BODY, hashlib.sha512).hexdigest()
    verify(sig, GEN_SECRET, req(GEN_BODY, {"X-Signature": presented}), 0.0)
    assert code_of(sig, GEN_SECRET, req(GEN_BODY, {"X-Signature": presented[7:]}), 0.0) == "bad_signature"


@pytest.mark.parametrize(
    "override",
    [
        {"signed": "{header:X-Ts}.{body}"},
        {"key_encoding": "base64"},
        {"scheme": "none"},
        {"scheme": "token"},
        {"multiple": True},
        {"timestamp_header": "X-Ts", "tolerance_seconds": 10},
        {"configurable": ["signed"]},
    ],
    ids=lambda o: ",".join(o),
)
def test_generic_non_configurable_fields_cannot_be_overridden(override: dict[str, Any]) -> None:
    generic = spec("generic-hmac")
    assert generic.signature_for(override) == generic.signature
    # mixed with an allowed field, only the allowed field applies
    mixed = generic.signature_for({**override, "algorithm": "sha1"})
    assert mixed == generic.signature.model_copy(update={"algorithm": "sha1"})


def test_generic_scheme_none_override_does_not_disable_verification() -> None:
    sig = spec("generic-hmac").signature_for({"scheme": "none"})
    assert code_of(sig, GEN_SECRET, req(GEN_BODY, {}), 0.0) == "missing_signature"


def test_generic_invalid_override_value_is_refused() -> None:
    with pytest.raises(ValidationError):
        spec("generic-hmac").signature_for({"algorithm": "md5"})


def test_signature_spec_refuses_unknown_configurable_fields() -> None:
    with pytest.raises(ValidationError):
        SignatureSpec(header="X-Sig", configurable=["scheme"])


def test_signature_spec_requires_a_header_unless_scheme_none() -> None:
    with pytest.raises(ValidationError):
        SignatureSpec(scheme="hmac")
    verify(SignatureSpec(scheme="none"), None, req(b"{}", {}), 0.0)


def test_token_scheme_compares_the_header_to_the_secret() -> None:
    """GitLab's X-Gitlab-Token expressed in the spec format."""
    sig = SignatureSpec(scheme="token", header="X-Gitlab-Token")
    verify(sig, "tok-123", req(b"{}", {"X-Gitlab-Token": "tok-123"}), 0.0)
    assert code_of(sig, "tok-123", req(b"{}", {"X-Gitlab-Token": "tok-124"}), 0.0) == "bad_signature"
    assert code_of(sig, "tok-123", req(b"{}", {}), 0.0) == "missing_signature"


# --- Slack: the spec format can express "v0:{timestamp}:{body}" --------------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
SLACK_TS = 1531420618
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
SLACK = SignatureSpec(
    scheme="hmac",
    header="X-Slack-Signature",
    algorithm="sha256",
    encoding="hex",
    prefix="v0=",
    signed="v0:{header:X-Slack-Request-Timestamp}:{body}",
    timestamp_header="X-Slack-Request-Timestamp",
    tolerance_seconds=300,
)


def slack_req(signature: str = SLACK_SIGNATURE, ts: int = SLACK_TS) -> RawRequest:
    return req(
        SLACK_BODY,
        {
            "X-Slack-Signature": signature,
            "X-Slack-Request-Timestamp": str(ts),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )


def test_slack_official_vector_via_a_generic_spec() -> None:
    content = f"v0:{SLACK_TS}:".encode() + SLACK_BODY
    assert compute_signature(SLACK, SLACK_SECRET.encode(), content) == SLACK_SIGNATURE
    verify(SLACK, SLACK_SECRET, slack_req(), SLACK_TS + 5)


def test_slack_vector_rejections() -> None:
    assert code_of(SLACK, SLACK_SECRET, slack_req(SLACK_SIGNATURE[:-1] + "4"), SLACK_TS) == "bad_signature"
    assert code_of(SLACK, SLACK_SECRET, slack_req(), SLACK_TS + 301) == "stale_timestamp"
    # the timestamp is part of what is signed: moving it forward breaks the signature
    assert code_of(SLACK, SLACK_SECRET, slack_req(ts=SLACK_TS + 1), SLACK_TS) == "bad_signature"


def test_slack_spec_round_trips_as_a_custom_connector() -> None:
    """The same scheme as data, as an operator would POST it as a custom connector."""
    custom = ConnectorSpec.model_validate(
        {
            "id": "slack-events",
            "title": "Slack Events API",
            "signature": SLACK.model_dump(),
            "event_type": {"field": "event.type"},
            "dedup": {"field": "event_id"},
            "handshake": {"challenge": {"field": "type", "equals": "url_verification", "echo_field": "challenge"}},
            "events": {"*": "any Events API event"},
        }
    )
    assert custom.signature == SLACK
    verify(custom.signature, SLACK_SECRET, slack_req(), SLACK_TS)
