"""The ingest pipeline, free of any web framework: handshake, verify, split, route, store, answer.

Provider knowledge stays in the connector (spec + hooks, ``hub/connectors/connector.py``); this module
does the I/O around it and turns every outcome into a whole HTTP reply.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from hub.config_cache import RouteInfo, SourceInfo
from hub.connectors.connector import ConnectorHooks, Receipt, Reply, SourceContext, hooks_for
from hub.connectors.parse import ParsedEvent, ParseError
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError
from hub.db import tables as t
from hub.errors import HubError
from hub.ingest.store import NewEvent
from hub.runtime import Runtime
from hub.storage.notify import after_ingest

log = logging.getLogger("hub.ingest")
_NEVER_STORED = frozenset({"authorization", "cookie", "proxy-authorization"})
ALLOW = "GET, HEAD, POST, OPTIONS"  # as the methods guard answers OPTIONS for the path


_CHILDREN: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def labelled(metric: Any, label: str) -> Any:
    """``metric.labels(label)``, remembered: prometheus_client looks it up under a lock every time."""
    children = _CHILDREN.get(metric)
    if children is None:
        children = _CHILDREN[metric] = {}
    child = children.get(label)
    if child is None:
        child = children[label] = metric.labels(label)
    return child


def reject(rt: Runtime, source_id: str, status: int, code: str, cause: str) -> HubError:
    labelled(rt.metrics.events_rejected, code).inc()
    log.warning("webhook rejected", extra={"source_id": source_id, "code": code, "cause": cause})
    return HubError(status, code, cause)


def stored_headers(
    headers: Mapping[str, str], spec: ConnectorSpec, hooks: ConnectorHooks, settings: Any
) -> dict[str, str]:
    """The headers kept with an event: never credentials, nor a header that carries a token secret
    (the source's own header name when it overrides the connector's)."""
    sig = spec.signature_for(settings.get("signature"))
    secret_header = sig.header.lower() if sig.scheme in ("token", "basic") else None
    if sig.scheme == "token":
        # a header the source names in a setting; one that names no header was refused by verification
        with contextlib.suppress(ValueError):
            secret_header = sig.token_header(settings)[0].lower()
    never = _NEVER_STORED | hooks.secret_headers
    return {k: v for k, v in headers.items() if k not in never and k != secret_header}


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


def ingest_url(public_url: str, request_base: str, source_id: str) -> str:
    """The URL a provider is given (and signs, for Trello and HubSpot): HUB_PUBLIC_URL when set."""
    return f"{(public_url or request_base).rstrip('/')}/hooks/{source_id}"


def source_context(rt: Runtime, source: SourceInfo, secret: str | None, request_base: str) -> SourceContext:
    settings = {**source.settings, **source.secret_settings}
    return SourceContext(source.id, secret, settings, ingest_url(rt.settings.public_url, request_base, source.id))


def _with_secret(ctx: SourceContext, secret: str | None) -> SourceContext:
    return ctx if secret == ctx.secret else SourceContext(ctx.id, secret, ctx.settings, ctx.ingest_url)


def verify_rotating(
    hooks: ConnectorHooks, spec: ConnectorSpec, source: SourceInfo, ctx: SourceContext, raw: RawRequest, now: float
) -> str | None:
    """Verify with the source's secret; during a rotation's overlap, a signature by the previous one
    passes. Returns the secret that verified."""
    try:
        hooks.verify(spec, ctx, source.secret, raw, now)
        return source.secret
    except VerificationError as exc:
        previous = source.previous_secret_at(now)
        if exc.code != "bad_signature" or previous is None:
            raise
        try:
            hooks.verify(spec, ctx, previous, raw, now)
        except VerificationError:
            raise exc from None
        return previous


def too_large(rt: Runtime, source_id: str) -> HubError:
    return reject(rt, source_id, 413, "body_too_large", f"body over {rt.settings.max_body_bytes} bytes")


async def learn_secret(rt: Runtime, source_id: str, secret: str) -> bool:
    """Store a secret a handshake taught (Asana), only while the source has none: True when stored."""
    s = t.sources
    try:
        async with rt.engine.begin() as conn:
            res = await conn.execute(
                sa.update(s)
                .where(s.c.id == source_id, s.c.secret_enc.is_(None))
                .values(secret_enc=rt.box.seal(secret), updated_at=time.time())
            )
    except Exception as exc:
        raise storage_unavailable(rt, source_id, exc) from None
    rt.cache.invalidate()
    return bool(res.rowcount)


def _payload_text(ev: ParsedEvent) -> str | None:
    if not ev.own_payload:
        return None
    try:
        return orjson.dumps(ev.payload).decode()
    except TypeError:  # integers over 64 bits: the standard library writes them
        try:
            return json.dumps(ev.payload, allow_nan=False, separators=(",", ":"))
        except ValueError as exc:
            raise ParseError(f"the payload cannot be stored as JSON: {exc}") from None


def new_events(
    spec: ConnectorSpec,
    source: SourceInfo,
    events: Sequence[ParsedEvent],
    headers: dict[str, str],
    body: bytes,
    now: float,
    payloads: Sequence[str | None],
    routes: Sequence[Sequence[RouteInfo]],
) -> list[tuple[NewEvent, Sequence[RouteInfo]]]:
    """The rows of a request's events with their routes; the raw body is kept once, with the first."""
    out: list[tuple[NewEvent, Sequence[RouteInfo]]] = []
    for i, ev in enumerate(events):
        status = "ignored" if ev.ignored else ("routed" if routes[i] else "unrouted")
        row = NewEvent(
            source.id,
            spec.id,
            ev.type,
            ev.dedup_key,
            ev.subject,
            headers,
            body if i == 0 else b"",
            now,
            status,
            payloads[i],
            ev.dedup_window,
        )
        out.append((row, routes[i]))
    return out


async def _routes(rt: Runtime, source_id: str, events: Sequence[ParsedEvent]) -> list[list[RouteInfo]]:
    out: list[list[RouteInfo]] = []
    try:
        for ev in events:
            out.append([] if ev.ignored else await rt.cache.routes_for(source_id, ev.type))
    except Exception as exc:
        raise storage_unavailable(rt, source_id, exc) from None
    return out


async def ingest(rt: Runtime, source_id: str, raw: RawRequest, request_base: str = "") -> Reply:
    """Everything after the body is read. Raises HubError with a stable code; 2xx only once committed."""
    source, spec = await lookup_source(rt, source_id)
    hooks = hooks_for(spec)
    try:
        return await _receive(rt, source, spec, hooks, raw, request_base)
    except HubError as exc:
        shaped = hooks.error_reply(spec, exc)
        if shaped is None:
            raise
        return shaped


async def _receive(
    rt: Runtime, source: SourceInfo, spec: ConnectorSpec, hooks: ConnectorHooks, raw: RawRequest, request_base: str
) -> Reply:
    ctx = source_context(rt, source, source.secret, request_base)
    handshake = hooks.handshake(spec, ctx, raw)
    if handshake is not None:
        if handshake.learn_secret is not None and not await learn_secret(rt, source.id, handshake.learn_secret):
            raise reject(rt, source.id, 409, "secret_already_set", "this source already has a secret")
        log.info("handshake answered", extra={"source_id": source.id})
        return handshake.reply
    if raw.method == "HEAD":
        return Reply(200, b"", "text/plain")
    if raw.method != "POST":
        raise HubError(405, "method_not_allowed", "this source receives webhooks by POST", headers={"Allow": ALLOW})
    now = time.time()
    try:
        secret = verify_rotating(hooks, spec, source, ctx, raw, now)
    except VerificationError as exc:
        raise reject(rt, source.id, 401, exc.code, exc.message) from None
    try:
        events = hooks.split(spec, _with_secret(ctx, secret), raw, now)
        challenge = hooks.challenge(spec, events)
        if challenge is not None:
            return challenge
        headers = stored_headers(raw.headers, spec, hooks, ctx.settings)
        payloads = [_payload_text(ev) for ev in events]
    except ParseError as exc:
        raise reject(rt, source.id, 400, exc.code, str(exc)) from None
    body = hooks.stored_body(spec, raw)
    batch = new_events(spec, source, events, headers, body, now, payloads, await _routes(rt, source.id, events))
    try:
        stored = await rt.ingest.store_many(batch)
    except Exception as exc:
        raise storage_unavailable(rt, source.id, exc) from None
    receipts = [Receipt(s.event_id, s.duplicate) for s in stored]
    for r in receipts:
        if r.duplicate:
            rt.metrics.events_duplicate.inc()
            log.info("duplicate webhook", extra={"source_id": source.id, "event_id": r.event_id})
        else:
            labelled(rt.metrics.events_received, spec.id).inc()
    if any(s.delivery_ids for s in stored):
        await rt.dispatcher.notify()
    await after_ingest(rt, source, [ev for ev, _ in batch], stored)  # storage sources: fetch what changed
    return hooks.reply(spec, receipts)
