"""Mappings as managed resources: built-in ones (files, read-only, copyable) and managed ones written over
the API, where every change is a new version and deliveries record the version that rendered them.

A managed mapping for a connector is checked before it is stored: it must render every sample event of
its connector (tests/expected, shipped with hub) that it is written for, with a title; fields the samples
lack are returned as warnings.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hub.api.common import AdminKey, ReadKey, RuntimeDep, iso, now
from hub.api.error_docs import conflict
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.auth.principal import Principal
from hub.db import tables as t
from hub.errors import HubError, invalid, not_found
from hub.mapping.catalogue import parse_inline
from hub.mapping.render import MappingError, missing_fields
from hub.mapping.samples import context_of, load_samples, render_with
from hub.mapping.spec import MappingSpec
from hub.runtime import Runtime

router = APIRouter(prefix="/api/v1/mappings", tags=["mappings"], route_class=TextGuardRoute)
NAME = r"^[a-z0-9][a-z0-9_.\-]{0,99}$"
EXAMPLE_SPEC: dict[str, Any] = {
    "description": "New GitHub issues, short",
    "events": ["issues.opened"],
    "post": {
        "title": "#{{ payload.issue.number }} {{ payload.issue.title }}",
        "link": "{{ payload.issue.html_url }}",
    },
}


class MappingOut(BaseModel):
    name: str
    builtin: bool = Field(description="Built-in mappings are files: read-only, copy one to change it.")
    connector: str | None
    version: int | None = Field(description="The current version of a managed mapping.")
    description: str
    events: list[str]
    spec: MappingSpec | None = None
    updated_at: str | None = None


class MappingCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "short-issues", "connector": "github", "spec": EXAMPLE_SPEC}]},
    )
    name: str = Field(pattern=NAME, description='How routes refer to it (`mapping: "<name>"`).')
    connector: str | None = Field(None, description="The connector it is written for: checked on its samples.")
    spec: dict[str, Any] = Field(description="Same format as mappings/*.yaml: {when?, events?, post: {...}}.")


class MappingUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"spec": EXAMPLE_SPEC}]})
    spec: dict[str, Any]


class MappingCopy(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "my-issues-opened"}]})
    name: str = Field(pattern=NAME)


class MappingWritten(MappingOut):
    warnings: list[str] = Field(default_factory=list, description="Fields the samples lack (rendered empty).")


class MappingVersionOut(BaseModel):
    version: int
    created_at: str | None
    created_by: str | None
    spec: MappingSpec


def _parse(spec: dict[str, Any]) -> MappingSpec:
    try:
        return parse_inline(spec)
    except MappingError as exc:
        raise invalid(str(exc), field="spec") from None


def check_on_samples(rt: Runtime, connector: str | None, spec: MappingSpec) -> list[str]:
    """Render the mapping on its connector's samples (those of its events); 422 when one fails."""
    if connector is None:
        return []
    warnings: list[str] = []
    for sample in load_samples(connector=connector) if rt.connectors.get(connector) else []:
        if sample.ignored or (spec.events and not any(fnmatch.fnmatchcase(sample.type, p) for p in spec.events)):
            continue
        try:
            render_with(spec, rt.connectors, sample)
        except MappingError as exc:
            raise invalid(f"the mapping fails on sample {sample.name} ({sample.type}): {exc}", field="spec") from None
        warnings += [f"{sample.name}: {w}" for w in missing_fields(spec, context_of(sample, rt.connectors))]
    return warnings[:50]


def _builtin_out(rt: Runtime, name: str, with_spec: bool) -> MappingOut:
    spec = rt.mappings.get(name)
    assert spec is not None
    connector = name.split("/")[0] if "/" in name else None
    return MappingOut(
        name=name,
        builtin=True,
        connector=connector,
        version=None,
        description=spec.description,
        events=spec.events,
        spec=spec if with_spec else None,
    )


def _managed_out(row: Any, spec: MappingSpec, with_spec: bool) -> MappingOut:
    return MappingOut(
        name=row["id"],
        builtin=False,
        connector=row["connector"],
        version=row["version"],
        description=spec.description,
        events=spec.events,
        spec=spec if with_spec else None,
        updated_at=iso(row["updated_at"]),
    )


async def _managed_rows(rt: Runtime, name: str | None = None) -> list[tuple[Any, MappingSpec]]:
    m, v = t.mappings, t.mapping_versions
    stmt = (
        sa.select(m, v.c.spec).join(v, sa.and_(v.c.mapping_id == m.c.id, v.c.version == m.c.version)).order_by(m.c.id)
    )
    if name is not None:
        stmt = stmt.where(m.c.id == name)
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(stmt)).mappings().all()
    return [(r, MappingSpec.model_validate(r["spec"])) for r in rows]


@router.get("", response_model=list[MappingOut], summary="Built-in and managed mappings")
async def list_mappings(rt: RuntimeDep, _: ReadKey, connector: str | None = None) -> list[MappingOut]:
    out = [_builtin_out(rt, n, False) for n in rt.mappings.names()]
    out += [_managed_out(r, s, False) for r, s in await _managed_rows(rt)]
    return [m for m in out if connector is None or m.connector == connector]


@router.get("/{name:path}/versions", response_model=list[MappingVersionOut], summary="A managed mapping's history")
async def list_versions(name: str, rt: RuntimeDep, _: ReadKey) -> list[MappingVersionOut]:
    v = t.mapping_versions
    async with rt.engine.connect() as conn:
        rows = (
            (await conn.execute(sa.select(v).where(v.c.mapping_id == name).order_by(v.c.version.desc())))
            .mappings()
            .all()
        )
    if not rows:
        raise not_found("mapping", name)
    return [
        MappingVersionOut(
            version=r["version"],
            created_at=iso(r["created_at"]),
            created_by=r["created_by"],
            spec=MappingSpec.model_validate(r["spec"]),
        )
        for r in rows
    ]


@router.get("/{name:path}", response_model=MappingOut, summary="A mapping with its templates")
async def get_mapping(name: str, rt: RuntimeDep, _: ReadKey) -> MappingOut:
    if rt.mappings.get(name) is not None:
        return _builtin_out(rt, name, True)
    found = await _managed_rows(rt, name)
    if not found:
        raise not_found("mapping", name)
    return _managed_out(found[0][0], found[0][1], True)


async def _insert(
    rt: Runtime,
    name: str,
    connector: str | None,
    spec: MappingSpec,
    who: Principal,
    warnings: list[str],
    action: str = "create",
) -> MappingWritten:
    if rt.mappings.taken(name, [c.id for c in rt.connectors.all()]):
        raise HubError(409, "mapping_exists", f"{name} is the name of a built-in mapping")
    ts = now()
    row = {"id": name, "connector": connector, "description": spec.description, "version": 1}
    try:
        async with rt.engine.begin() as conn:
            await conn.execute(t.mappings.insert().values(**row, created_at=ts, updated_at=ts))
            await conn.execute(
                t.mapping_versions.insert().values(
                    mapping_id=name, version=1, spec=spec.model_dump(), created_at=ts, created_by=who.id[:64]
                )
            )
            await record(conn, who, "mapping", name, action, ["spec"])
    except sa.exc.IntegrityError:
        raise HubError(409, "mapping_exists", f"a mapping named {name} exists: PUT a new version") from None
    rt.cache.invalidate()
    return MappingWritten(**_managed_out({**row, "updated_at": ts}, spec, True).model_dump(), warnings=warnings)


@router.post(
    "",
    status_code=201,
    response_model=MappingWritten,
    summary="Create a managed mapping (version 1)",
    responses=conflict("mapping_exists"),
)
async def create_mapping(body: MappingCreate, rt: RuntimeDep, who: AdminKey) -> MappingWritten:
    if body.connector is not None and await rt.cache.connector(body.connector) is None:
        raise invalid(f"unknown connector {body.connector!r}", field="connector")
    spec = _parse(body.spec)
    return await _insert(rt, body.name, body.connector, spec, who, check_on_samples(rt, body.connector, spec))


@router.put(
    "/{name:path}",
    response_model=MappingWritten,
    summary="Write a new version of a managed mapping",
    responses=conflict("mapping_read_only"),
)
async def update_mapping(name: str, body: MappingUpdate, rt: RuntimeDep, who: AdminKey) -> MappingWritten:
    if rt.mappings.get(name) is not None:
        raise HubError(409, "mapping_read_only", f"{name} is built in: copy it (POST …/copy) to change it")
    found = await _managed_rows(rt, name)
    if not found:
        raise not_found("mapping", name)
    row = found[0][0]
    spec = _parse(body.spec)
    warnings = check_on_samples(rt, row["connector"], spec)
    ts = now()
    m = t.mappings
    async with rt.engine.begin() as conn:
        # compare-and-set on the version: two writers at once get two versions, never one lost
        version = row["version"]
        while True:
            res = await conn.execute(
                sa.update(m)
                .where(m.c.id == name, m.c.version == version)
                .values(version=version + 1, description=spec.description, updated_at=ts)
            )
            if res.rowcount:
                break
            version = await conn.scalar(sa.select(m.c.version).where(m.c.id == name))
            if version is None:
                raise not_found("mapping", name)
        await conn.execute(
            t.mapping_versions.insert().values(
                mapping_id=name, version=version + 1, spec=spec.model_dump(), created_at=ts, created_by=who.id[:64]
            )
        )
        await record(conn, who, "mapping", name, "update", ["spec"], {"version": version + 1})
    rt.cache.invalidate()
    out = _managed_out({**row, "version": version + 1, "updated_at": ts}, spec, True)
    return MappingWritten(**out.model_dump(), warnings=warnings)


@router.post(
    "/{name:path}/copy",
    status_code=201,
    response_model=MappingWritten,
    summary="Copy a built-in or managed mapping into a new managed one",
    responses=conflict("mapping_exists"),
)
async def copy_mapping(name: str, body: MappingCopy, rt: RuntimeDep, who: AdminKey) -> MappingWritten:
    builtin = rt.mappings.get(name)
    if builtin is not None:
        connector = name.split("/")[0] if "/" in name else None
        return await _insert(rt, body.name, connector, builtin, who, [], "copy")
    found = await _managed_rows(rt, name)
    if not found:
        raise not_found("mapping", name)
    return await _insert(rt, body.name, found[0][0]["connector"], found[0][1], who, [], "copy")


@router.delete(
    "/{name:path}",
    status_code=204,
    summary="Delete a managed mapping no route uses",
    responses=conflict("mapping_in_use", "mapping_read_only"),
)
async def delete_mapping(name: str, rt: RuntimeDep, who: AdminKey) -> None:
    if rt.mappings.get(name) is not None:
        raise HubError(409, "mapping_read_only", f"{name} is built in")
    async with rt.engine.begin() as conn:
        routes = await conn.execute(sa.select(t.routes.c.id, t.routes.c.mapping))
        users = [r.id for r in routes if r.mapping == name]
        if users:
            raise HubError(409, "mapping_in_use", f"route {users[0]} uses {name}: change it first")
        await conn.execute(sa.delete(t.mapping_versions).where(t.mapping_versions.c.mapping_id == name))
        res = await conn.execute(sa.delete(t.mappings).where(t.mappings.c.id == name))
        if res.rowcount == 0:
            raise not_found("mapping", name)
        await record(conn, who, "mapping", name, "delete")
    rt.cache.invalidate()
