"""The /hooks/{source_id} routes: POST documented here (``fastpath`` serves it), GET/HEAD handshakes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from hub.connectors.verify import RawRequest
from hub.errors import HubError
from hub.ingest.core import ingest, lookup_source, too_large
from hub.runtime import Runtime

router = APIRouter(tags=["ingest"])


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


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
        503: {"description": "storage_unavailable: the event was not stored; the provider should retry"},
    },
)
async def receive(source_id: str, request: Request) -> Response:
    """Verify the signature on the raw body, commit the event, answer 202 with its id.

    In a running hub ``hub.ingest.fastpath`` answers this route first, with the same ``core.ingest``.
    """
    rt = _runtime(request)
    limit = rt.settings.max_body_bytes
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(rt, source_id)
    raw = RawRequest(
        body=bytes(body),
        headers={k.lower(): v for k, v in request.headers.items()},
        method=request.method,
        url=str(request.url),
        query=dict(request.query_params),
    )
    answer = await ingest(rt, source_id, raw)
    return JSONResponse(answer.body, status_code=answer.status)


@router.head("/hooks/{source_id}", include_in_schema=False)
@router.get(
    "/hooks/{source_id}",
    summary="Answer a provider's handshake (Dropbox challenge, Trello HEAD)",
    responses={404: {"description": "unknown_source"}, 405: {"description": "no handshake for this connector"}},
)
async def handshake(source_id: str, request: Request) -> Response:
    """Dropbox-style ``?challenge=`` echo and Trello-style ``HEAD``; 404 for unknown sources."""
    _, spec = await lookup_source(_runtime(request), source_id)
    if request.method == "HEAD":
        return Response(status_code=200)
    echo = spec.handshake.query_echo
    if echo and echo.param in request.query_params:
        return PlainTextResponse(request.query_params[echo.param], headers={"X-Content-Type-Options": "nosniff"})
    raise HubError(
        405, "method_not_allowed", "this source receives webhooks by POST", headers={"Allow": "GET, HEAD, POST"}
    )
