"""Routes: which events of a source go to which target, through which mapping."""

from __future__ import annotations

import fnmatch
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from hub.api.common import AdminKey, ReadKey, RuntimeDep, find_row, get_row, iso, now, reject_nulls
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.db import tables as t
from hub.delivery.calm import Digest, QuietHours
from hub.errors import invalid, not_found
from hub.ids import new_id
from hub.mapping.catalogue import parse_inline
from hub.mapping.render import MappingError
from hub.runtime import Runtime

router = APIRouter(prefix="/api/v1/routes", tags=["routes"], route_class=TextGuardRoute)

MappingField = Field(
    None,
    description="A mapping file name (e.g. 'issues.opened'), an inline mapping "
    "({post: {title: …}}), or omitted for the connector's default per event type.",
)


CoalesceField = Field(
    None,
    ge=1,
    le=86400,
    strict=True,
    allow_inf_nan=False,
    description="Seconds: events about one business object within this window from the first become one post "
    "carrying the last state and how many changes it folds. Null: every event posts.",
)
QuietField = Field(None, description="Business hours: outside them, posts wait for the next opening.")
DigestField = Field(None, description="Post one daily digest listing the route's events instead of each event.")
DIRECT = (
    "Send each post to the first person it mentions, directly, where the target can (slack-api, zulip, "
    "viva-engage) and the people directory knows that person there; else to the channel as usual."
)


class RouteCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"source_id": "src_…", "target_id": "tgt_…", "events": ["issues.opened", "pull_request.*"]}]
        },
    )
    source_id: str
    target_id: str
    events: list[str] = Field(
        min_length=1,
        description="Event types; shell-style wildcards allowed. Each must match an event type the source's "
        "connector declares (GET /api/v1/connectors), else 422.",
    )
    mapping: str | dict[str, Any] | None = MappingField
    enabled: StrictBool = True
    coalesce_seconds: float | None = CoalesceField
    quiet_hours: QuietHours | None = QuietField
    digest: Digest | None = DigestField
    notify_direct: StrictBool = Field(False, description=DIRECT)


class RouteUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"events": ["issues.*"]}, {"coalesce_seconds": 120}]}
    )
    events: list[str] | None = Field(None, min_length=1)
    mapping: str | dict[str, Any] | None = MappingField
    enabled: StrictBool | None = None
    coalesce_seconds: float | None = CoalesceField
    quiet_hours: QuietHours | None = QuietField
    digest: Digest | None = DigestField
    notify_direct: StrictBool | None = Field(None, description=DIRECT)


class RouteOut(BaseModel):
    id: str
    source_id: str
    target_id: str
    events: list[str]
    mapping: str | dict[str, Any] | None
    enabled: bool
    coalesce_seconds: float | None = None
    quiet_hours: QuietHours | None = None
    digest: Digest | None = None
    notify_direct: bool = False
    created_at: str | None
    updated_at: str | None


def _out(row: Any) -> RouteOut:
    return RouteOut(
        id=row["id"],
        source_id=row["source_id"],
        target_id=row["target_id"],
        events=row["events"],
        mapping=row["mapping"],
        enabled=row["enabled"],
        coalesce_seconds=row.get("coalesce_seconds"),
        quiet_hours=row.get("quiet_hours"),
        digest=row.get("digest"),
        notify_direct=bool(row.get("notify_direct")),
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


async def _check_mapping(rt: Runtime, connector: str, mapping: str | dict[str, Any] | None) -> None:
    await rt.cache.refresh_if_stale()  # managed mappings written a moment ago
    try:
        if isinstance(mapping, dict):
            parse_inline(mapping)
        elif (
            isinstance(mapping, str)
            and rt.mappings.managed(mapping) is None
            and rt.mappings.get(f"{connector}/{mapping}") is None
            and rt.mappings.get(mapping) is None
        ):
            raise MappingError(f"no mapping named {mapping!r}; known: {', '.join(rt.mappings.names())}")
    except MappingError as exc:
        raise invalid(str(exc), field="mapping") from None


def unknown_events(declared: dict[str, str], patterns: list[str]) -> list[str]:
    """The patterns that match none of a connector's declared event types (a connector that declares
    ``*`` takes any type)."""
    if "*" in declared:
        return []
    return [
        p
        for p in patterns
        # a declared family (``*.outbound``) takes its members, a route pattern takes the declared types it matches
        if not any(fnmatch.fnmatchcase(event, p) or fnmatch.fnmatchcase(p, event) for event in declared)
    ]


async def _check_events(rt: Runtime, connector: str, events: list[str]) -> None:
    spec = await rt.cache.connector(connector)
    if spec is None:
        return
    unknown = unknown_events(spec.events, events)
    if unknown:
        raise invalid(
            f"connector {connector} sends no event matching {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(spec.events))}",
            field="events",
        )


def _calm(coalesce_seconds: float | None, quiet_hours: Any, digest: Any) -> dict[str, Any]:
    """The calm settings as stored (JSON for the schedules); a digest already folds a day's events."""
    if coalesce_seconds and digest:
        raise invalid("a digest already gathers the route's events: coalesce_seconds or digest, not both")

    def plain(value: Any) -> Any:
        return value.model_dump() if isinstance(value, BaseModel) else value

    return {"coalesce_seconds": coalesce_seconds, "quiet_hours": plain(quiet_hours), "digest": plain(digest)}


@router.post("", status_code=201, response_model=RouteOut, summary="Create a route")
async def create_route(body: RouteCreate, rt: RuntimeDep, who: AdminKey) -> RouteOut:
    source = await find_row(rt, t.sources, body.source_id)
    if source is None:
        raise invalid(f"no source {body.source_id!r}", field="source_id")
    if await find_row(rt, t.targets, body.target_id) is None:
        raise invalid(f"no target {body.target_id!r}", field="target_id")
    await _check_events(rt, source["connector"], body.events)
    await _check_mapping(rt, source["connector"], body.mapping)
    ts = now()
    row = {
        "id": new_id("rte"),
        "source_id": body.source_id,
        "target_id": body.target_id,
        "events": body.events,
        "mapping": body.mapping,
        "enabled": body.enabled,
        **_calm(body.coalesce_seconds, body.quiet_hours, body.digest),
        "notify_direct": body.notify_direct,
        "created_at": ts,
        "updated_at": ts,
    }
    async with rt.engine.begin() as conn:
        await conn.execute(t.routes.insert().values(**row))
        await record(conn, who, "route", str(row["id"]), "create", body.model_fields_set)
    rt.cache.invalidate()
    return _out(row)


@router.get("", response_model=list[RouteOut], summary="List routes")
async def list_routes(rt: RuntimeDep, _: ReadKey, source_id: str | None = None) -> list[RouteOut]:
    stmt = sa.select(t.routes).order_by(t.routes.c.id)
    if source_id:
        stmt = stmt.where(t.routes.c.source_id == source_id)
    async with rt.engine.connect() as conn:
        return [_out(r) for r in (await conn.execute(stmt)).mappings()]


@router.get("/{route_id}", response_model=RouteOut, summary="Get a route")
async def get_route(route_id: str, rt: RuntimeDep, _: ReadKey) -> RouteOut:
    row = await get_row(rt, t.routes, route_id, "route")
    return _out(row)


@router.patch("/{route_id}", response_model=RouteOut, summary="Update a route")
async def update_route(route_id: str, body: RouteUpdate, rt: RuntimeDep, who: AdminKey) -> RouteOut:
    row = await get_row(rt, t.routes, route_id, "route")
    changes: dict[str, Any] = body.model_dump(exclude_unset=True)
    reject_nulls(changes, "events", "enabled", "notify_direct")
    calm_given = {"coalesce_seconds", "quiet_hours", "digest"} & changes.keys()
    if calm_given:
        merged = {k: changes[k] if k in changes else row[k] for k in ("coalesce_seconds", "quiet_hours", "digest")}
        changes.update(_calm(**merged))
    source = await find_row(rt, t.sources, row["source_id"])
    if changes.get("events") and source:
        await _check_events(rt, source["connector"], changes["events"])
    if "mapping" in changes:
        await _check_mapping(rt, source["connector"] if source else "", changes["mapping"])
    changes["updated_at"] = now()
    async with rt.engine.begin() as conn:
        await conn.execute(sa.update(t.routes).where(t.routes.c.id == route_id).values(**changes))
        await record(conn, who, "route", route_id, "update", body.model_fields_set)
    rt.cache.invalidate()
    return _out({**row, **changes})


@router.delete("/{route_id}", status_code=204, summary="Delete a route")
async def delete_route(route_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    async with rt.engine.begin() as conn:
        res = await conn.execute(sa.delete(t.routes).where(t.routes.c.id == route_id))
        if res.rowcount == 0:
            raise not_found("route", route_id)
        await record(conn, who, "route", route_id, "delete")
    rt.cache.invalidate()
