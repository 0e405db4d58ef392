"""POST /hooks/{source_id}: verify, store durably, answer 202. Nothing acknowledged is lost."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hub.connectors.parse import ParseError, lookup, parse
from hub.connectors.spec import ConnectorSpec
from hub.connectors.verify import RawRequest, VerificationError, verify
from hub.errors import HubError
from hub.ingest.store import NewEvent
from hub.runtime import Runtime

log = logging.getLogger("hub.ingest")
router = APIRouter(tags=["ingest"])

_NEVER_STORED = {"authorization", "cookie", "proxy-authorization", "x-gitlab-token"}


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _reject(rt: Runtime, source_id: str, status: int, code: str, cause: str) -> HubError:
    rt.metrics.events_rejected.labels(code).inc()
    log.warning("webhook rejected", extra={"source_id": source_id, "code": code, "cause": cause})
    return HubError(status, code, cause)


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks = bytearray()
    async for chunk in request.stream():
        chunks += chunk
        if len(chunks) > limit:
            return None
    return bytes(chunks)


def stored_headers(headers: Any, spec: ConnectorSpec) -> dict[str, str]:
    secret_header = spec.signature.header.lower() if spec.signature.scheme == "token" else None
    return {k: v for k, v in headers.items() if k not in _NEVER_STORED and k != secret_header}


@router.post(
    "/hooks/{source_id}",
    status_code=202,
    summary="Receive a webhook from a provider",
    responses={
        200: {"description": "A repeated delivery: the first event's id"},
        401: {"description": "missing_signature / bad_signature / stale_timestamp"},
        404: {"description": "unknown_source"},
        413: {"description": "body_too_large"},
        400: {"description": "unparseable_body"},
    },
)
async def receive(source_id: str, request: Request) -> Response:
    rt = _runtime(request)
    source = await rt.cache.source(source_id)
    if source is None or not source.enabled:
        raise _reject(rt, source_id, 404, "unknown_source", "no enabled source with this id")
    spec = rt.connectors.get(source.connector)
    if spec is None:
        raise _reject(rt, source_id, 404, "unknown_connector", f"connector {source.connector} is not registered")
    body = await _read_body(request, rt.settings.max_body_bytes)
    if body is None:
        raise _reject(rt, source_id, 413, "body_too_large", f"body over {rt.settings.max_body_bytes} bytes")
    raw = RawRequest(
        body=body,
        headers={k.lower(): v for k, v in request.headers.items()},
        method=request.method,
        url=str(request.url),
        query=dict(request.query_params),
    )
    now = time.time()
    try:
        verify(spec.signature_for(source.settings.get("signature")), source.secret, raw, now)
    except VerificationError as exc:
        raise _reject(rt, source_id, 401, exc.code, exc.message) from None
    try:
        parsed = parse(spec, raw)
    except ParseError as exc:
        raise _reject(rt, source_id, 400, "unparseable_body", str(exc)) from None
    challenge = spec.handshake.challenge
    if challenge and str(lookup(parsed.payload, challenge.field)) == challenge.equals:
        return JSONResponse({"challenge": lookup(parsed.payload, challenge.echo_field)}, status_code=200)
    ignored = parsed.type in spec.handshake.ignore_types
    routes = [] if ignored else await rt.cache.routes_for(source_id, parsed.type)
    status = "ignored" if ignored else ("routed" if routes else "unrouted")
    ev = NewEvent(
        source_id,
        spec.id,
        parsed.type,
        parsed.dedup_key,
        parsed.subject,
        stored_headers(raw.headers, spec),
        body,
        now,
        status,
    )
    try:
        stored = await rt.ingest.store(ev, routes)
    except Exception as exc:
        raise _reject(
            rt, source_id, 503, "storage_unavailable", f"the event could not be stored: {type(exc).__name__}"
        ) from None
    if stored.duplicate:
        rt.metrics.events_duplicate.inc()
        log.info("duplicate webhook", extra={"source_id": source_id, "event_id": stored.event_id})
        return JSONResponse({"event_id": stored.event_id, "duplicate": True}, status_code=200)
    rt.metrics.events_received.labels(spec.id).inc()
    if stored.delivery_ids:
        await rt.dispatcher.notify()
    return JSONResponse({"event_id": stored.event_id}, status_code=202)


@router.head("/hooks/{source_id}", include_in_schema=False)
@router.get("/hooks/{source_id}", summary="Answer a provider's handshake (Dropbox challenge, Trello HEAD)")
async def handshake(source_id: str, request: Request) -> Response:
    """Dropbox-style ``?challenge=`` echo and Trello-style ``HEAD``; 404 for unknown sources."""
    rt = _runtime(request)
    source = await rt.cache.source(source_id)
    spec = rt.connectors.get(source.connector) if source else None
    if source is None or spec is None:
        raise HubError(404, "unknown_source", "no enabled source with this id")
    if request.method == "HEAD":
        return Response(status_code=200)
    echo = spec.handshake.query_echo
    if echo and echo.param in request.query_params:
        return PlainTextResponse(request.query_params[echo.param], headers={"X-Content-Type-Options": "nosniff"})
    raise HubError(405, "method_not_allowed", "this source receives webhooks by POST")
