"""HubSpot webhooks: three signature versions, a millisecond timestamp, and batches of up to 100 events.

Verification (https://developers.hubspot.com/docs/api/webhooks/validating-requests):

- v3, ``X-HubSpot-Signature-v3``: base64 HMAC-SHA256(client secret, method + URI + body + timestamp),
  ``X-HubSpot-Request-Timestamp`` in milliseconds, refused when older than 5 minutes (hub also refuses one
  more than 5 minutes ahead). In the URI, the characters HubSpot lists are decoded first (%3A → ``:``…).
- v1 and v2, chosen by ``X-HubSpot-Signature-Version``, in ``X-HubSpot-Signature``: hex SHA-256 (a plain
  hash, not an HMAC) of secret + body (v1) or secret + method + URI + body (v2, URI exactly as sent).

HubSpot sends the older versions beside v3 "for backwards compatibility": when v3 is present it alone
decides. The signed URI is the one HubSpot was given: the source's ingest URL as hub builds it from
HUB_PUBLIC_URL (``req.url``, with the query string as sent).

A request is a JSON array of events (https://developers.hubspot.com/docs/api/webhooks#webhook-payloads),
one stored event each, typed by ``subscriptionType`` (what deliveries carry; one docs example says
``eventType``, which hub does not read). HubSpot
documents ``eventId`` as "not guaranteed to be unique": the dedup key qualifies it by account and
subscription (a retry keeps all three; ``attemptNumber`` changes and is left out).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
from dataclasses import replace
from typing import Any

from hub.connectors.connector import SourceContext, SpecHooks
from hub.connectors.parse import ParsedEvent, ParseError, dedup_key, event_for, loads_json, storable
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, wire_bytes

V3_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
LEGACY_HEADER = "X-HubSpot-Signature"
VERSION_HEADER = "X-HubSpot-Signature-Version"
TOLERANCE_MS = 5 * 60 * 1000
MAX_EVENTS = 100

# "In the request URI, decode any of the URL-encoded characters listed in the table below."
_DECODED = {"3A": ":", "2F": "/", "3F": "?", "40": "@", "21": "!", "24": "$", "27": "'", "28": "(", "29": ")"}
_DECODED |= {"2A": "*", "2C": ",", "3B": ";"}
_ENCODED = re.compile("%(" + "|".join(_DECODED) + ")", re.IGNORECASE)

# HubSpot's object type ids (https://developers.hubspot.com/docs/api/crm/understanding-the-crm#object-type-ids)
OBJECT_TYPE_IDS = {"contact": "0-1", "company": "0-2", "deal": "0-3", "ticket": "0-5"}
DEAL_STAGE_ACTIONS = {"closedwon": "won", "closedlost": "lost"}
ACTIONS = {"creation": "created", "deletion": "deleted", "propertyChange": "updated", "merge": "merged"}
ACTIONS |= {"restore": "restored", "associationChange": "associated", "privacyDeletion": "deleted"}


def v3_uri(uri: str) -> str:
    """The URI as HubSpot signs it in v3: the characters of its table decoded, nothing else."""
    return _ENCODED.sub(lambda m: _DECODED[m.group(1).upper()], uri)


def v3_signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    content = method.upper().encode() + v3_uri(uri).encode() + body + wire_bytes(timestamp)
    return base64.b64encode(hmac.new(secret.encode(), content, hashlib.sha256).digest()).decode()


def legacy_signature(secret: str, version: str, method: str, uri: str, body: bytes) -> str:
    content = secret.encode() + (b"" if version == "v1" else method.upper().encode() + uri.encode()) + body
    return hashlib.sha256(content).hexdigest()


def _check_v3(secret: str, req: RawRequest, presented: str, now: float) -> None:
    raw_ts = req.header(TIMESTAMP_HEADER)
    if not raw_ts:
        raise VerificationError("missing_signature", f"header {TIMESTAMP_HEADER} is missing")
    try:
        ts_ms = float(raw_ts)
    except ValueError:
        raise VerificationError("bad_timestamp", f"header {TIMESTAMP_HEADER} is not a number") from None
    if not math.isfinite(ts_ms):
        raise VerificationError("bad_timestamp", f"header {TIMESTAMP_HEADER} is not a finite number")
    expected = v3_signature(secret, req.method, req.url, req.body, raw_ts)
    if not hmac.compare_digest(expected.encode(), wire_bytes(presented.strip())):
        raise VerificationError("bad_signature", f"header {V3_HEADER} does not match the request")
    if abs(now * 1000 - ts_ms) > TOLERANCE_MS:
        raise VerificationError("stale_timestamp", "timestamp (milliseconds) outside the 5 minutes tolerance")


def _check_legacy(secret: str, req: RawRequest) -> None:
    presented = req.header(LEGACY_HEADER)
    if not presented:
        raise VerificationError("missing_signature", f"header {V3_HEADER} (or {LEGACY_HEADER}) is missing")
    version = (req.header(VERSION_HEADER) or "").strip().lower()
    if version not in ("v1", "v2"):
        raise VerificationError("bad_signature", f"header {VERSION_HEADER} is not v1 or v2")
    expected = legacy_signature(secret, version, req.method, req.url, req.body)
    if not hmac.compare_digest(expected.encode(), wire_bytes(presented.strip()).lower()):
        raise VerificationError("bad_signature", f"header {LEGACY_HEADER} ({version}) does not match the request")


def object_kind(event_type: str, item: dict[str, Any]) -> str:
    """contact, company, deal, ticket…; for the generic ``object.*`` subscriptions, the objectTypeId."""
    kind = event_type.partition(".")[0]
    if kind == "object":
        return str(item.get("objectTypeId") or "object")
    return kind


class Hooks(SpecHooks):
    def verify(
        self, spec: ConnectorSpec, source: SourceContext, secret: str | None, req: RawRequest, now: float
    ) -> None:
        v3 = req.header(V3_HEADER)
        if not v3 and not req.header(LEGACY_HEADER):
            raise VerificationError("missing_signature", f"header {V3_HEADER} is missing")
        if not secret:
            raise VerificationError("bad_signature", "the source has no secret to verify with")
        if v3:
            _check_v3(secret, req, v3, now)
        else:
            _check_legacy(secret, req)

    def split(self, spec: ConnectorSpec, source: SourceContext, req: RawRequest, now: float) -> list[ParsedEvent]:
        body = loads_json(req.body)
        items = body if isinstance(body, list) else [body]
        if len(items) > MAX_EVENTS:
            raise ParseError(f"a HubSpot request holds at most {MAX_EVENTS} events", "too_many_events")
        return [self._event(spec, req, item) for item in items]

    def _event(self, spec: ConnectorSpec, req: RawRequest, item: Any) -> ParsedEvent:
        if not isinstance(item, dict):
            raise ParseError("each HubSpot event is a JSON object")
        ev = event_for(spec, req, item)
        kind = object_kind(ev.type, item)
        object_id, portal = item.get("objectId"), item.get("portalId")
        subject = storable(f"{portal}/{kind}/{object_id}", 300) if _scalar(object_id) and _scalar(portal) else None
        event_id = item.get("eventId")
        key = None
        if _scalar(event_id):
            key = dedup_key(f"{portal}/{item.get('subscriptionId')}/{event_id}")
        return replace(ev, subject=subject, dedup_key=key)

    def view(self, spec: ConnectorSpec, event_type: str, payload: Any) -> dict[str, Any]:
        view = super().view(spec, event_type, payload)
        if not isinstance(payload, dict):
            return view
        kind = object_kind(event_type, payload)
        type_id = OBJECT_TYPE_IDS.get(kind, kind if kind[:1].isdigit() else "")
        if type_id and _scalar(payload.get("portalId")) and _scalar(payload.get("objectId")):
            view["object"]["url"] = (
                f"https://app.hubspot.com/contacts/{payload['portalId']}/record/{type_id}/{payload['objectId']}"
            )
        view["action"] = view["action"] or ACTIONS.get(event_type.rpartition(".")[2], "")
        if event_type.endswith(".propertyChange") and payload.get("propertyName") in ("dealstage", "hs_pipeline_stage"):
            stage = str(payload.get("propertyValue") or "")
            view["object"]["state"] = stage
            view["action"] = DEAL_STAGE_ACTIONS.get(stage, "stage_changed")
        return view


def _scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, dict | list | bool)
