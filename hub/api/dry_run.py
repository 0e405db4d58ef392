"""Dry run: what a candidate mapping would do to a route's last stored events, beside what the current
one does, before anything changes. Nothing is sent."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub.api.common import ReadKey, RuntimeDep, get_row, iso
from hub.api.text_guard import TextGuardRoute
from hub.config_cache import RouteInfo
from hub.db import tables as t
from hub.errors import HubError
from hub.mapping.context import mapping_context, stored_payload
from hub.mapping.render import MappingError, applies, missing_fields, render_post
from hub.mapping.spec import MappingSpec
from hub.runtime import Runtime
from hub.targets.registry import get_target

router = APIRouter(prefix="/api/v1/routes", tags=["routes"], route_class=TextGuardRoute)
SCAN = 2000  # stored events looked at to find the route's last N


class DryRunIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"mapping": {"post": {"title": "#{{ payload.issue.number }} {{ payload.issue.title }}"}}}]
        },
    )
    mapping: str | dict[str, Any] | None = Field(
        description="The candidate: a mapping name, an inline mapping (admin keys only), or null for the default."
    )
    limit: int = Field(50, ge=1, le=200, strict=True, description="How many of the route's last stored events.")


class Rendering(BaseModel):
    outcome: Literal["posted", "skipped", "error"]
    post: dict[str, Any] | None = None
    request: dict[str, Any] | None = Field(None, description="What the route's target would receive.")
    error: str | None = None
    warnings: list[str] = Field(default_factory=list)


class DryRunEvent(BaseModel):
    event_id: str
    type: str
    received_at: str | None
    current: Rendering
    candidate: Rendering
    change: Literal["same", "changed", "now_skipped", "now_posted", "now_error", "error_fixed"]
    differs: list[str] = Field(description="Post fields (and 'request') whose value differs.")


class DryRunOut(BaseModel):
    route_id: str
    events: list[DryRunEvent]
    summary: dict[str, int] = Field(description="How many events fall under each kind of change.")


def _render(mapping: MappingSpec, context: dict[str, Any], target: Any, config: Any) -> Rendering:
    try:
        if not applies(mapping, context):
            return Rendering(outcome="skipped")
        post = render_post(mapping, context)
        request = target.preview(post, config) if target is not None and config is not None else None
        return Rendering(
            outcome="posted",
            post=post.model_dump(mode="json"),
            request=request,
            warnings=missing_fields(mapping, context),
        )
    except MappingError as exc:
        return Rendering(outcome="error", error=str(exc))


def _change(current: Rendering, candidate: Rendering) -> tuple[str, list[str]]:
    if current.outcome != candidate.outcome:
        change = {"skipped": "now_skipped", "error": "now_error"}.get(candidate.outcome)
        return change or ("error_fixed" if current.outcome == "error" else "now_posted"), []
    if current.outcome != "posted":
        return ("same" if current.error == candidate.error else "changed"), []
    a, b = current.post or {}, candidate.post or {}
    differs = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    if current.request != candidate.request:
        differs.append("request")
    return ("changed" if differs else "same"), differs


async def _last_events(rt: Runtime, route: Any, limit: int) -> list[Any]:
    e = t.events
    stmt = (
        sa.select(e.c.id, e.c.type, e.c.subject, e.c.body, e.c.payload, e.c.headers, e.c.connector, e.c.received_at)
        .where(e.c.source_id == route["source_id"], e.c.status != "ignored")
        .order_by(e.c.received_at.desc())
        .limit(SCAN)
    )
    info = RouteInfo(route["id"], route["source_id"], route["target_id"], list(route["events"]), None, True)
    async with rt.engine.connect() as conn:
        rows = [r for r in await conn.execute(stmt) if info.matches(r.type)]
    return rows[:limit]


@router.post(
    "/{route_id}/dry-run",
    response_model=DryRunOut,
    summary="Render the route's last stored events through its mapping and a candidate, side by side",
    responses={403: {"description": "an inline candidate with a read key"}},
)
async def dry_run(route_id: str, body: DryRunIn, rt: RuntimeDep, who: ReadKey) -> DryRunOut:
    """Nothing is sent: for each of the route's last stored events (N ≤ 200), what the current mapping and
    the candidate give (the post and the target's exact request), and what differs."""
    if isinstance(body.mapping, dict) and not who.is_admin:
        raise HubError(403, "forbidden", "an inline mapping is a template: a dry run of one needs an admin key")
    route = await get_row(rt, t.routes, route_id, "route")
    source = await rt.cache.source(route["source_id"])
    target_info = await rt.cache.target(route["target_id"])
    target = get_target(target_info.kind) if target_info else None
    config = target_info.config if target_info else None
    events: list[DryRunEvent] = []
    directory = await rt.cache.directory()
    for row in await _last_events(rt, route, body.limit):
        spec = rt.connectors.get(row.connector)
        renderings: list[Rendering] = []
        for ref in (route["mapping"], body.mapping):
            try:
                payload = stored_payload(row.payload, row.body, row.headers, spec)
                mapping = rt.mappings.resolve(row.connector, row.type, ref)
            except Exception as exc:  # no mapping for this event, a body no longer readable
                renderings.append(Rendering(outcome="error", error=f"{type(exc).__name__}: {exc}"))
                continue
            context = mapping_context(
                payload=payload,
                spec=spec,
                event_id=row.id,
                event_type=row.type,
                source_id=route["source_id"],
                connector=row.connector,
                subject=row.subject,
                received_at=row.received_at,
                source_name=source.name if source else "",
                directory=directory,
            )
            renderings.append(_render(mapping, context, target, config))
        change, differs = _change(renderings[0], renderings[1])
        events.append(
            DryRunEvent(
                event_id=row.id,
                type=row.type,
                received_at=iso(row.received_at),
                current=renderings[0],
                candidate=renderings[1],
                change=change,
                differs=differs,
            )
        )
    summary: dict[str, int] = {}
    for ev in events:
        summary[ev.change] = summary.get(ev.change, 0) + 1
    return DryRunOut(route_id=route_id, events=events, summary=summary)
