"""Pure parsing of a verified request: payload, event type, dedup id and business subject."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest

_FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


class ParseError(Exception):
    """The request cannot be understood by the connector (answered 400 with ``code``)."""

    def __init__(self, message: str, code: str = "unparseable_body") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ParsedEvent:
    """One business event of a request. ``own_payload``: the payload is not simply the body's JSON (a
    batch item, a form field, a body that is not JSON), so it is stored beside the raw request.
    ``dedup_window``: the dedup key counts only within these seconds. ``ignored``: stored, never routed."""

    payload: Any
    type: str
    dedup_key: str | None
    subject: str | None
    own_payload: bool = False
    dedup_window: float | None = None
    ignored: bool = False


def lookup(data: Any, path: str) -> Any:
    """Follow a dotted path through dicts (and list indexes); None when any step is missing."""
    cur = data
    for part in path.split("."):
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
            cur = cur[int(part)]
        else:
            return None
        if cur is None:
            return None
    return cur


def is_form(spec: ConnectorSpec, req: RawRequest) -> bool:
    ctype = (req.header("content-type") or "").split(";")[0].strip().lower()
    return ctype == "application/x-www-form-urlencoded" and spec.form_field is not None


def parse_payload(spec: ConnectorSpec, req: RawRequest) -> Any:
    body = req.body
    if is_form(spec, req) and spec.form_field:
        try:
            fields = parse_qs(body.decode("utf-8"), strict_parsing=True)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"form body cannot be decoded: {exc}") from None
        values = fields.get(spec.form_field)
        if not values:
            raise ParseError(f"form body has no {spec.form_field!r} field")
        body = values[0].encode()
    return loads_json(body)


def _without_surrogates(value: Any) -> Any:
    """JSON may escape a lone surrogate (\\ud800) that no UTF-8 output can carry: replace it."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return value.encode(errors="replace").decode()
        return value
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def loads_json(body: bytes) -> Any:
    """orjson on the hot path; the standard library for what orjson refuses (NaN, integers over 64 bits)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # nested deeper than any real payload: no second try
            raise ParseError(f"body is not valid JSON: {exc}") from None
    try:
        return _without_surrogates(json.loads(body))
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, 4300+ digit integers
        raise ParseError(f"body is not valid JSON: {type(exc).__name__}: {exc}"[:300]) from None


def filled(templates: list[str], payload: Any) -> str | None:
    """The first template whose fields all exist as text (not empty, not an object or a list), filled in."""
    for template in templates:
        values: dict[str, str] = {}
        for name in _FIELD.findall(template):
            found = lookup(payload, name)
            if found is None or isinstance(found, dict | list) or found == "":
                break
            values[name] = str(found)
        else:
            return _FIELD.sub(lambda m, v=values: v[m.group(1)], template)  # type: ignore[misc]
    return None


def event_type_of(spec: ConnectorSpec, req: RawRequest, payload: Any) -> str:
    ets = spec.event_type
    base: str | None = None
    if ets.header:
        base = req.header(ets.header)
    if not base and ets.templates:
        found = filled(ets.templates, payload)
        if found:
            return found
    if not base and ets.field:
        value = lookup(payload, ets.field)
        base = str(value) if value is not None and not isinstance(value, dict | list) else None
    if not base and ets.required:
        where = [f"header {ets.header}"] if ets.header else []
        where += ets.templates + ([f"field {ets.field}"] if ets.field else [])
        raise ParseError(f"the event type is missing ({' or '.join(where)})", "missing_event_type")
    base = base or ets.default
    if ets.action_field:
        action = lookup(payload, ets.action_field)
        if isinstance(action, str | int) and not isinstance(action, bool):
            return f"{base}.{action}"
    return base


DEDUP_MAX = 300  # events.dedup_key


def storable(text: str, limit: int) -> str:
    """Text a database column takes: no NUL (Postgres refuses it), no lone surrogate (JSON allows
    ``\ud800``, UTF-8 does not), at most ``limit`` characters."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode()
    except UnicodeEncodeError:
        text = text.encode(errors="replace").decode()
    return text[:limit]


def dedup_key(value: str) -> str:
    """A provider's delivery id as stored: longer ids are hashed, never cut (two ids must not merge)."""
    clean = storable(value, DEDUP_MAX + 1)
    if clean == value and len(value) <= DEDUP_MAX:
        return value
    # longer, or cleaned (two ids differing by a NUL must stay two): the hash of the exact original
    return "sha256:" + hashlib.sha256(value.encode(errors="surrogatepass")).hexdigest()


def content_hash(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def dedup_of(spec: ConnectorSpec, req: RawRequest, payload: Any) -> str | None:
    """The first delivery id present (headers in order, the field, then the templates), else the body's hash
    if asked."""
    for name in spec.dedup.headers():
        value = req.header(name)
        if value:
            return dedup_key(value)
    if spec.dedup.field:
        found = lookup(payload, spec.dedup.field)
        if found is not None and not isinstance(found, dict | list):
            return dedup_key(str(found))
    if spec.dedup.templates:
        key = filled(spec.dedup.templates, payload)
        if key is not None:
            return dedup_key(key)
    if spec.dedup.content_hash:
        return content_hash(req.body)
    return None


def subject_of(templates: list[str], payload: Any) -> str | None:
    """The first template whose fields all exist, filled in."""
    for template in templates:
        values: dict[str, str] = {}
        for name in _FIELD.findall(template):
            found = lookup(payload, name)
            if found is None or isinstance(found, dict | list):
                break
            values[name] = str(found)
        else:
            return storable(_FIELD.sub(lambda m, v=values: v[m.group(1)], template), 300)  # type: ignore[misc]
    return None


def event_for(spec: ConnectorSpec, req: RawRequest, payload: Any, own_payload: bool = True) -> ParsedEvent:
    """One event with its type, dedup key and subject as the spec finds them in ``payload`` and ``req``."""
    event_type = storable(event_type_of(spec, req, payload), 200)
    return ParsedEvent(
        payload=payload,
        type=event_type,
        dedup_key=dedup_of(spec, req, payload),
        subject=subject_of(spec.subject, payload),
        own_payload=own_payload,
        dedup_window=spec.dedup.window_seconds,
        ignored=event_type in spec.handshake.ignore_types,
    )


def parse(spec: ConnectorSpec, req: RawRequest) -> ParsedEvent:
    """The one event of a request whose body is the payload (JSON, or JSON in a form field)."""
    return event_for(spec, req, parse_payload(spec, req), own_payload=is_form(spec, req))
