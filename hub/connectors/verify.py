"""Pure signature verification: the request, the secret and the clock are passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.connectors.spec import SignatureSpec

_PLACEHOLDER = re.compile(r"\{(body|method|url|header:[A-Za-z0-9_-]+)\}")


@dataclass(frozen=True)
class RawRequest:
    """What verification and parsing see of an HTTP request. Header names are lower-case."""

    body: bytes
    headers: Mapping[str, str]
    method: str = "POST"
    url: str = ""
    query: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class VerificationError(Exception):
    """The request is not proven to come from the provider. ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode_key(secret: str, key_encoding: str) -> bytes:
    if key_encoding == "utf8":
        return secret.encode()
    raw = secret.removeprefix("whsec_") if key_encoding == "whsec" else secret
    raw += "=" * (-len(raw) % 4)  # senders often drop the padding
    try:
        return base64.b64decode(raw, validate=True)
    except ValueError:
        raise VerificationError("bad_secret", "the source secret is not valid base64") from None


def signed_content(template: str, req: RawRequest) -> bytes:
    """Build the signed bytes from a template such as ``{header:webhook-id}.{header:webhook-timestamp}.{body}``."""
    out = bytearray()
    pos = 0
    for m in _PLACEHOLDER.finditer(template):
        out += template[pos : m.start()].encode()
        name = m.group(1)
        if name == "body":
            out += req.body
        elif name == "method":
            out += req.method.upper().encode()
        elif name == "url":
            out += req.url.encode()
        else:
            value = req.header(name[len("header:") :])
            if value is None:
                raise VerificationError("missing_signature", f"header {name[7:]} is missing")
            out += wire_bytes(value)
        pos = m.end()
    out += template[pos:].encode()
    return bytes(out)


def wire_bytes(header_value: str) -> bytes:
    """The bytes a header value had on the wire: ASGI servers decode header bytes as latin-1."""
    try:
        return header_value.encode("latin-1")
    except UnicodeEncodeError:  # built by hand (tests, tools) from text beyond latin-1
        return header_value.encode()


def compute_signature(spec: SignatureSpec, key: bytes, content: bytes) -> str:
    digest = hmac.new(key, content, getattr(hashlib, spec.algorithm)).digest()
    encoded = digest.hex() if spec.encoding == "hex" else base64.b64encode(digest).decode()
    return spec.prefix + encoded


def _check_timestamp(spec: SignatureSpec, req: RawRequest, now: float) -> None:
    if not spec.timestamp_header:
        return
    raw = req.header(spec.timestamp_header)
    if raw is None:
        raise VerificationError("missing_signature", f"header {spec.timestamp_header} is missing")
    try:
        ts = float(raw)
    except ValueError:
        raise VerificationError("bad_timestamp", f"header {spec.timestamp_header} is not a number") from None
    if not math.isfinite(ts):
        raise VerificationError("bad_timestamp", f"header {spec.timestamp_header} is not a finite number")
    tolerance = spec.tolerance_seconds if spec.tolerance_seconds is not None else 300
    if abs(now - ts) > tolerance:
        raise VerificationError("stale_timestamp", f"timestamp outside the {tolerance}s tolerance")


def _check_basic(spec: SignatureSpec, presented: str, username: str, secret: str) -> None:
    scheme, _, encoded = presented.strip().partition(" ")
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
    except ValueError:
        user, sep, password = b"", b"", b""
    if scheme.lower() != "basic" or not sep:
        raise VerificationError("bad_signature", f"header {spec.header} is not HTTP Basic credentials")
    user_ok = hmac.compare_digest(user, username.encode())
    if not (hmac.compare_digest(password, secret.encode()) and user_ok):
        raise VerificationError("bad_signature", f"header {spec.header} does not match")


def verify(
    spec: SignatureSpec,
    secret: str | None,
    req: RawRequest,
    now: float,
    settings: Mapping[str, object] | None = None,
) -> None:
    """Raise VerificationError unless the request carries a valid signature for ``secret``."""
    if spec.scheme == "none":
        return
    presented = req.header(spec.header)
    if not presented:
        raise VerificationError("missing_signature", f"header {spec.header} is missing")
    if not secret:
        raise VerificationError("bad_signature", "the source has no secret to verify with")
    if spec.scheme == "token":
        if not hmac.compare_digest(wire_bytes(presented), (spec.prefix + secret).encode()):
            raise VerificationError("bad_signature", f"header {spec.header} does not match")
        return
    if spec.scheme == "basic":
        _check_basic(spec, presented, str((settings or {}).get("username") or ""), secret)
        return
    _check_timestamp(spec, req, now)
    expected = compute_signature(spec, decode_key(secret, spec.key_encoding), signed_content(spec.signed, req))
    candidates = presented.split(spec.separator) if spec.multiple else [presented]
    if spec.encoding == "hex":
        expected = expected.lower()
        candidates = [c.lower() for c in candidates]
    if not any(hmac.compare_digest(expected.encode(), c.strip().encode()) for c in candidates):
        raise VerificationError("bad_signature", f"header {spec.header} does not match the body")
