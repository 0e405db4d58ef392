"""The request behind a delivery: its event rendered again through its route's mapping and target, secrets
masked, for the console's event detail (attempts keep the answer, not the request they sent)."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from hub.api.common import ReadKey, RuntimeDep
from hub.api.dry_run import Rendering, _render
from hub.api.text_guard import TextGuardRoute
from hub.db import tables as t
from hub.errors import not_found
from hub.mapping.context import EventForMapping, context_for
from hub.targets.registry import get_target

router = APIRouter(prefix="/api/v1", tags=["deliveries"], route_class=TextGuardRoute)


class DeliveryRequest(BaseModel):
    delivery_id: str
    mapping_version: str | None = Field(
        description="The mapping that renders it now (builtin:<name>, <name>@<version>, inline); null when "
        "the route or its mapping is gone."
    )
    rendering: Rendering = Field(
        description="`posted`: the post and the exact request the target gets, secrets masked (a thread's "
        "reply fields are those of a first post); `skipped`: the mapping's `when` is false; `error`: why not."
    )


@router.get(
    "/deliveries/{delivery_id}/request",
    response_model=DeliveryRequest,
    summary="The request a delivery sends, rendered again with secrets masked",
)
async def delivery_request(
    rt: RuntimeDep, _: ReadKey, delivery_id: str = Path(description="A delivery id (`dlv_…`).")
) -> DeliveryRequest:
    """Renders the delivery's stored event through its route's mapping as it is now and the target's
    settings: the post and the request (method, URL, headers, body) with every secret masked. Nothing is
    sent. Compare `mapping_version` with the delivery's own to see whether the mapping changed since."""
    d, e = t.deliveries, t.events
    async with rt.engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(d.c.id, d.c.route_id, d.c.target_id, d.c.event_id, *t.EVENT_FOR_MAPPING)
                .select_from(d.join(e, e.c.id == d.c.event_id))
                .where(d.c.id == delivery_id)
            )
        ).first()
    if row is None:
        raise not_found("delivery", delivery_id)
    route = await rt.cache.route(row.route_id)
    target_info = await rt.cache.target(row.target_id)
    target = get_target(target_info.kind) if target_info else None
    if route is None or target_info is None or target is None:
        return DeliveryRequest(
            delivery_id=delivery_id,
            mapping_version=None,
            rendering=Rendering(outcome="error", error="the route or target was deleted"),
        )
    spec = await rt.cache.connector(row.connector)
    source = await rt.cache.source(row.source_id)
    event = EventForMapping.of(row, source.name if source else "")
    directory = await rt.cache.directory()
    try:
        context = context_for(event, spec, directory)
        mapping, version = rt.mappings.resolve_versioned(row.connector, row.type, route.mapping)
    except Exception as exc:  # no mapping for this event, a body no longer readable
        return DeliveryRequest(
            delivery_id=delivery_id,
            mapping_version=None,
            rendering=Rendering(outcome="error", error=f"{type(exc).__name__}: {exc}"),
        )
    return DeliveryRequest(
        delivery_id=delivery_id,
        mapping_version=version,
        rendering=_render(mapping, context, target, target_info.config),
    )
