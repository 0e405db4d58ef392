"""Box Webhooks V2: two signature keys, an RFC 3339 delivery timestamp, one version and one algorithm.

Docs: https://developer.box.com/guides/webhooks/v2/signatures-v2/ (verify manually) and
https://developer.box.com/guides/webhooks/handle/payload/ (headers and body). The official SDK's
``WebhooksManager.validate_message`` (box/box-python-sdk-gen) is followed where the guide says less:

- ``BOX-SIGNATURE-VERSION`` must be ``1`` and ``BOX-SIGNATURE-ALGORITHM`` ``HmacSHA256``;
- ``BOX-DELIVERY-TIMESTAMP`` no older than 10 minutes, and not in the future;
- ``BOX-SIGNATURE-PRIMARY`` = base64 HMAC-SHA256(primary key, body bytes + timestamp bytes), or
  ``BOX-SIGNATURE-SECONDARY`` with the secondary key (rotation: either valid key is enough);
- the SDK also accepts a signature over the body with its non-ASCII and control characters escaped as
  JSON ``\\uXXXX`` (and backslashes doubled, except before ``/``): tried second, as the SDK does.

The source's secret is the primary key; the secret setting ``secondary_key`` the secondary one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from datetime import datetime

from hub.connectors.connector import SourceContext, SpecHooks
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, wire_bytes

MAX_AGE_SECONDS = 600
VERSION = "1"
ALGORITHM = "HmacSHA256"
PRIMARY, SECONDARY = "box-signature-primary", "box-signature-secondary"
TIMESTAMP = "box-delivery-timestamp"
_BACKSLASH = re.compile(r"\\(?!/)")
_TO_ESCAPE = re.compile(r"[^\x20-\x7e]")


def escape_unicode(text: str) -> str:
    """The body as the SDK escapes it: backslashes doubled (not before ``/``), then every character outside
    printable ASCII as ``\\n``, ``\\r``, ``\\t`` or ``\\uXXXX`` (a UTF-16 surrogate pair beyond the BMP)."""

    def one(match: re.Match[str]) -> str:
        char = match.group(0)
        named = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char)
        if named:
            return named
        code = ord(char)
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return _TO_ESCAPE.sub(one, _BACKSLASH.sub(r"\\\\", text))


def signature(key: str, body: bytes, timestamp: bytes) -> str:
    return base64.b64encode(hmac.new(key.encode(), body + timestamp, hashlib.sha256).digest()).decode()


def delivery_time(value: str) -> float:
    """Seconds since the epoch of an RFC 3339 timestamp (an offset or ``Z`` is required)."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise VerificationError("bad_timestamp", f"header {TIMESTAMP} is not an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise VerificationError("bad_timestamp", f"header {TIMESTAMP} has no time zone offset")
    try:
        ts = parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        raise VerificationError("bad_timestamp", f"header {TIMESTAMP} is out of range") from None
    return ts


def check_time(value: str, now: float) -> None:
    ts = delivery_time(value)
    if not math.isfinite(ts) or now - ts > MAX_AGE_SECONDS:
        raise VerificationError("stale_timestamp", f"the delivery is older than {MAX_AGE_SECONDS // 60} minutes")
    if int(ts) > int(now):  # the SDK compares whole seconds
        raise VerificationError("stale_timestamp", "the delivery timestamp is in the future")


class Hooks(SpecHooks):
    """Box's signature check; everything else (type ``trigger``, dedup on the body ``id``) is the spec's."""

    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None:
        presented = {name: req.header(name) for name in (PRIMARY, SECONDARY)}
        if not any(presented.values()):
            raise VerificationError("missing_signature", "headers BOX-SIGNATURE-PRIMARY and -SECONDARY are missing")
        for name in ("box-signature-version", "box-signature-algorithm", TIMESTAMP):
            if req.header(name) is None:
                raise VerificationError("missing_signature", f"header {name.upper()} is missing")
        if (req.header("box-signature-version") or "").strip() != VERSION:
            raise VerificationError("bad_signature", f"only BOX-SIGNATURE-VERSION {VERSION} is accepted")
        if (req.header("box-signature-algorithm") or "").strip() != ALGORITHM:
            raise VerificationError("bad_signature", f"only BOX-SIGNATURE-ALGORITHM {ALGORITHM} is accepted")
        timestamp = req.header(TIMESTAMP) or ""
        check_time(timestamp, now)
        secondary = source.settings.get("secondary_key")
        keys = {PRIMARY: secret, SECONDARY: secondary if isinstance(secondary, str) else None}
        checkable = [(sig, key) for name, sig in presented.items() if sig and (key := keys[name])]
        if not checkable:
            raise VerificationError("bad_signature", "the source has no key for the signatures sent")
        stamp = wire_bytes(timestamp)
        bodies = [req.body]
        try:
            escaped = escape_unicode(req.body.decode()).encode()
        except UnicodeDecodeError:
            escaped = req.body
        if escaped != req.body:
            bodies.append(escaped)
        for body in bodies:
            for sig, key in checkable:
                if hmac.compare_digest(signature(key, body, stamp).encode(), wire_bytes(sig.strip())):
                    return
        raise VerificationError("bad_signature", "neither Box signature matches the body and timestamp")
