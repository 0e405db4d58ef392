"""The /hooks/{source_id} routes: POST documented here (``fastpath`` serves it), GET/HEAD handshakes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.ingest.core import ingest, too_large
from hub.ingest.request import raw_request
from hub.runtime import Runtime

router = APIRouter(tags=["ingest"])


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def _answer(source_id: str, request: Request) -> Response:
    rt = _runtime(request)
    limit = rt.settings.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(rt, source_id)
    raw, base = raw_request(request.scope, bytes(body), rt.settings.public_url)
    reply = await ingest(rt, source_id, raw, base)
    return Response(reply.body, reply.status, dict(reply.headers), reply.media_type)


@router.post(
    "/hooks/{source_id}",
    status_code=202,
    summary="Receive a webhook from a provider",
    responses={
        200: {"description": "A repeated delivery (the first event's id), or a handshake answered"},
        401: {"description": "missing_signature / bad_signature / stale_timestamp"},
        404: {"description": "unknown_source"},
        413: {"description": "body_too_large"},
        400: {"description": "unparseable_body / missing_event_type"},
        409: {"description": "secret_already_set: a handshake that would replace the source's secret"},
        503: {"description": "storage_unavailable: the event was not stored; the provider should retry"},
    },
)
async def receive(source_id: str, request: Request) -> Response:
    """Answer a handshake, or verify the request, commit its events and answer 202 with their ids.

    The answer is the connector's: JSON by default, the provider's own format where it needs one (a
    plain-text validation token, a SOAP acknowledgement). A batch (HubSpot, Microsoft Graph, Asana,
    Salesforce) becomes one event per business change. In a running hub ``hub.ingest.fastpath``
    answers this route first, with the same ``core.ingest``.
    """
    return await _answer(source_id, request)


@router.head("/hooks/{source_id}", include_in_schema=False)
@router.get(
    "/hooks/{source_id}",
    summary="Answer a provider's handshake (Dropbox challenge, Microsoft Graph validation, Trello HEAD)",
    responses={404: {"description": "unknown_source"}, 405: {"description": "no handshake for this connector"}},
)
async def handshake(source_id: str, request: Request) -> Response:
    """Handshakes that come by GET or HEAD; 404 for unknown sources, 405 when the connector has none."""
    return await _answer(source_id, request)
