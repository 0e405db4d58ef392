"""Pure signature verification: the request, the secret and the clock are passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import orjson

from hub.connectors.spec import SECRET_MARK, SignatureSpec

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


def _timestamp_value(raw: object, where: str) -> float:
    """A timestamp given as a JSON number or as text; booleans, objects and non-finite numbers are not."""
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise VerificationError("bad_timestamp", f"{where} is not a number")
    try:
        ts = float(raw)
    except (ValueError, OverflowError):
        raise VerificationError("bad_timestamp", f"{where} is not a number") from None
    if not math.isfinite(ts):
        raise VerificationError("bad_timestamp", f"{where} is not a finite number")
    return ts


def _check_window(spec: SignatureSpec, raw: object, where: str, now: float) -> None:
    """The timestamp is within ``tolerance_seconds`` before now and ``future_tolerance_seconds`` after it
    (the same tolerance both ways unless set): outside, stale_timestamp."""
    ts = _timestamp_value(raw, where)
    if spec.timestamp_unit == "ms":
        ts /= 1000
    tolerance = spec.tolerance_seconds if spec.tolerance_seconds is not None else 300
    ahead = spec.future_tolerance_seconds if spec.future_tolerance_seconds is not None else tolerance
    if now - ts > tolerance:
        raise VerificationError("stale_timestamp", f"timestamp outside the {tolerance}s tolerance")
    if ts - now > ahead:
        raise VerificationError("stale_timestamp", f"timestamp more than {ahead}s in the future")


def _check_timestamp(spec: SignatureSpec, req: RawRequest, now: float) -> None:
    if not spec.timestamp_header:
        return
    raw = req.header(spec.timestamp_header)
    if raw is None:
        raise VerificationError("missing_signature", f"header {spec.timestamp_header} is missing")
    _check_window(spec, raw, f"header {spec.timestamp_header}", now)


def _body_field(body: bytes, path: str) -> object:
    """A dotted path into the JSON body (None when absent); raises bad_timestamp when the body is not JSON."""
    try:
        cur: object = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            cur = json.loads(body)
        except (ValueError, RecursionError):
            raise VerificationError("bad_timestamp", "the body is not JSON: it has no timestamp") from None
    for part in path.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _check_body_timestamp(spec: SignatureSpec, req: RawRequest, now: float) -> None:
    if not spec.timestamp_field:
        return
    raw = _body_field(req.body, spec.timestamp_field)
    if raw is None:
        raise VerificationError("missing_signature", f"the body has no {spec.timestamp_field}")
    _check_window(spec, raw, f"field {spec.timestamp_field}", now)


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
    header, expected = spec.header, ""
    if spec.scheme == "token":
        try:
            header, expected = spec.token_header(settings or {})
        except ValueError as exc:
            raise VerificationError("bad_signature", str(exc)) from None
    presented = req.header(header)
    if not presented:
        raise VerificationError("missing_signature", f"header {header} is missing")
    if not secret:
        raise VerificationError("bad_signature", "the source has no secret to verify with")
    if spec.scheme == "token":
        if not hmac.compare_digest(wire_bytes(presented), expected.replace(SECRET_MARK, secret).encode()):
            raise VerificationError("bad_signature", f"header {header} does not match")
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
    _check_body_timestamp(spec, req, now)
