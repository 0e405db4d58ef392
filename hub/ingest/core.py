"""The ingest pipeline, free of any web framework: verify, parse, route, store, answer."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.config_cache import SourceInfo
from hub.connectors.parse import ParseError, lookup, parse
from hub.connectors.spec import ConnectorSpec, SignatureSpec
from hub.connectors.verify import RawRequest, VerificationError, verify
from hub.errors import HubError
from hub.ingest.store import NewEvent
from hub.runtime import Runtime

log = logging.getLogger("hub.ingest")
_NEVER_STORED = {"authorization", "cookie", "proxy-authorization", "x-gitlab-token"}


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def reject(rt: Runtime, source_id: str, status: int, code: str, cause: str) -> HubError:
    rt.metrics.events_rejected.labels(code).inc()
    log.warning("webhook rejected", extra={"source_id": source_id, "code": code, "cause": cause})
    return HubError(status, code, cause)


def stored_headers(headers: Mapping[str, str], sig: SignatureSpec) -> dict[str, str]:
    """The headers kept with an event: never credentials, nor the header that carries a token secret
    (the source's own header name when it overrides the connector's)."""
    secret_header = sig.header.lower() if sig.scheme == "token" else None
    return {k: v for k, v in headers.items() if k not in _NEVER_STORED and k != secret_header}


def storage_unavailable(rt: Runtime, source_id: str, exc: Exception) -> HubError:
    """The database cannot be reached: 503, so the provider retries; never a 2xx without the event stored."""
    return reject(rt, source_id, 503, "storage_unavailable", f"the database is unavailable: {type(exc).__name__}")


async def lookup_source(rt: Runtime, source_id: str) -> tuple[SourceInfo, ConnectorSpec]:
    try:
        source = await rt.cache.source(source_id)
    except Exception as exc:  # a cold cache during a database outage
        raise storage_unavailable(rt, source_id, exc) from None
    if source is None or not source.enabled:
        raise reject(rt, source_id, 404, "unknown_source", "no enabled source with this id")
    spec = rt.connectors.get(source.connector)
    if spec is None:
        raise reject(rt, source_id, 404, "unknown_connector", f"connector {source.connector} is not registered")
    return source, spec


def verify_rotating(sig: SignatureSpec, source: SourceInfo, raw: RawRequest, now: float) -> None:
    """Verify with the source's secret; during a rotation's overlap, a signature by the previous one passes."""
    try:
        verify(sig, source.secret, raw, now)
    except VerificationError as exc:
        previous = source.previous_secret_at(now)
        if exc.code != "bad_signature" or previous is None:
            raise
        try:
            verify(sig, previous, raw, now)
        except VerificationError:
            raise exc from None


def too_large(rt: Runtime, source_id: str) -> HubError:
    return reject(rt, source_id, 413, "body_too_large", f"body over {rt.settings.max_body_bytes} bytes")


async def ingest(rt: Runtime, source_id: str, raw: RawRequest) -> Answer:
    """Everything after the body is read. Raises HubError with a stable code; 202 only once committed."""
    source, spec = await lookup_source(rt, source_id)
    now = time.time()
    sig = spec.signature_for(source.settings.get("signature"))
    try:
        verify_rotating(sig, source, raw, now)
    except VerificationError as exc:
        raise reject(rt, source_id, 401, exc.code, exc.message) from None
    try:
        parsed = parse(spec, raw)
    except ParseError as exc:
        raise reject(rt, source_id, 400, "unparseable_body", str(exc)) from None
    challenge = spec.handshake.challenge
    if challenge and str(lookup(parsed.payload, challenge.field)) == challenge.equals:
        return Answer(200, {"challenge": lookup(parsed.payload, challenge.echo_field)})
    ignored = parsed.type in spec.handshake.ignore_types
    try:
        routes = [] if ignored else await rt.cache.routes_for(source_id, parsed.type)
    except Exception as exc:
        raise storage_unavailable(rt, source_id, exc) from None
    status = "ignored" if ignored else ("routed" if routes else "unrouted")
    ev = NewEvent(
        source_id,
        spec.id,
        parsed.type,
        parsed.dedup_key,
        parsed.subject,
        stored_headers(raw.headers, sig),
        raw.body,
        now,
        status,
    )
    try:
        stored = await rt.ingest.store(ev, routes)
    except Exception as exc:
        raise storage_unavailable(rt, source_id, exc) from None
    if stored.duplicate:
        rt.metrics.events_duplicate.inc()
        log.info("duplicate webhook", extra={"source_id": source_id, "event_id": stored.event_id})
        return Answer(200, {"event_id": stored.event_id, "duplicate": True})
    rt.metrics.events_received.labels(spec.id).inc()
    if stored.delivery_ids:
        await rt.dispatcher.notify()
    return Answer(202, {"event_id": stored.event_id})
