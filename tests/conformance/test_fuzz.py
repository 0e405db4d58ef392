"""Property tests: whatever a sender puts in the headers and the body, every connector's handshake,
verification and splitting only answer (a reply, "verified", events) or raise VerificationError /
ParseError: bad input never crashes (a crash would be a 500 instead of a 401/400 with its code)."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.connector import SourceContext, hooks_for
from hub.connectors.parse import ParseError
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError

SPECS = builtin_catalogue().all()
NOW = 1_700_000_000.0
KEY = base64.b64encode(b"k" * 24).decode()
SECRET = {"utf8": "a secret", "base64": KEY, "whsec": "whsec_" + KEY}
# headers read by hooks modules, beyond what specs name
EXTRA_HEADERS = [
    "authorization",
    "x-hook-secret",
    "x-hubspot-signature",
    "x-hubspot-signature-version",
    "x-hubspot-signature-v3",
    "x-hubspot-request-timestamp",
    "box-signature-primary",
    "box-signature-secondary",
    "box-delivery-timestamp",
    "box-signature-version",
    "box-signature-algorithm",
    "stripe-signature",
    "x-goog-channel-token",
    "x-goog-resource-state",
    "x-goog-channel-id",
    "x-goog-message-number",
]
METHODS = st.sampled_from(["POST", "POST", "POST", "GET", "HEAD"])
QUERIES = st.dictionaries(
    st.sampled_from(["challenge", "validationToken", "token", "x"]), st.text(max_size=20), max_size=2
)

# the headers connectors read, with values that look like what they expect and what they do not
NAMES = sorted(
    {
        name.lower()
        for spec in SPECS
        for name in (
            spec.signature.header,
            spec.signature.timestamp_header,
            spec.event_type.header,
            *spec.dedup.headers(),
            *re.findall(r"\{header:([^}]+)\}", spec.signature.signed),
        )
        if name
    }
    | {"content-type"}
    | {name.lower() for spec in SPECS for name in hooks_for(spec).secret_headers}
    | set(EXTRA_HEADERS)
)
VALUES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80),
    st.sampled_from(["nan", "inf", "-1e309", "1e309", "0", "-0", "1700000000", "v1,", "sha256=", "v1,===", " "]),
    st.builds(lambda p, s: f"{p}{s}", st.sampled_from(["sha256=", "v1,", "v1a,", "sha1="]), st.text(max_size=60)),
)
HEADERS = st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=len(NAMES))
BODIES = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"{}", b"[]", b"null", b'{"action": 1}', b'{"type": {"a": []}}', b'"x"', b"1e999"]),
)


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(headers=HEADERS, body=BODIES, method=METHODS, query=QUERIES)
def test_receiving_never_crashes(
    spec: ConnectorSpec, headers: dict[str, str], body: bytes, method: str, query: dict[str, str]
) -> None:
    req = RawRequest(body=body, headers=headers, method=method, url="https://hub.example/hooks/src_1", query=query)
    hooks = hooks_for(spec)
    secret = SECRET[spec.signature.key_encoding]
    ctx = SourceContext("src_1", secret, {"username": "u", "organization_id": "00D000000000062"})
    hooks.handshake(spec, ctx, req)
    try:
        hooks.verify(spec, ctx, secret, req, NOW)
    except VerificationError as exc:
        assert exc.code and exc.message
    with contextlib.suppress(ParseError):
        hooks.split(spec, ctx, req, NOW)
