"""Property tests: whatever a sender puts in the headers and the body, verification only answers
"verified" or a VerificationError, and parsing only a ParsedEvent or a ParseError: bad input never
crashes (a crash would be a 500 instead of a 401/400 with its code)."""

from __future__ import annotations

import base64
import contextlib
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.connectors.catalogue import builtin_catalogue
from hub.connectors.parse import ParseError, parse
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, verify

SPECS = builtin_catalogue().all()
NOW = 1_700_000_000.0
KEY = base64.b64encode(b"k" * 24).decode()
SECRET = {"utf8": "a secret", "base64": KEY, "whsec": "whsec_" + KEY}

# the headers connectors read, with values that look like what they expect and what they do not
NAMES = sorted(
    {
        name.lower()
        for spec in SPECS
        for name in (
            spec.signature.header,
            spec.signature.timestamp_header,
            spec.event_type.header,
            spec.dedup.header,
            *re.findall(r"\{header:([^}]+)\}", spec.signature.signed),
        )
        if name
    }
    | {"content-type"}
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
@given(headers=HEADERS, body=BODIES)
def test_verify_and_parse_never_crash(spec: ConnectorSpec, headers: dict[str, str], body: bytes) -> None:
    req = RawRequest(body=body, headers=headers, url="https://hub.example/hooks/src_1")
    try:
        verify(spec.signature, SECRET[spec.signature.key_encoding], req, NOW)
    except VerificationError as exc:
        assert exc.code and exc.message
    with contextlib.suppress(ParseError):
        parse(spec, req)
