"""People: a directory of who is who across tools, for mentions that tell someone."""

from __future__ import annotations

from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Body, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.api.common import AdminKey, ReadKey, RuntimeDep, get_row, iso, now
from hub.api.error_docs import conflict
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.db import tables as t
from hub.errors import HubError, invalid, not_found
from hub.ids import new_id
from hub.people.csv_io import CsvError, export_csv, plan_import
from hub.people.directory import KINDS
from hub.people.store import IdentityTaken, apply_import, clean_identities, load_directory, write_identities
from hub.runtime import Runtime

router = APIRouter(prefix="/api/v1/people", tags=["people"], route_class=TextGuardRoute)
EXAMPLE: dict[str, Any] = {
    "display_name": "Marie Dupont",
    "identities": {"email": "marie@acme.example", "github": "mdupont", "jira": "557058:f58131cb", "slack": "U024BE7LH"},
}


def _check_kinds(identities: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(identities) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown identity kind(s) {unknown}; known: {', '.join(KINDS)}")
    for kind, value in identities.items():
        if value is not None and (not isinstance(value, str) or len(value) > 320):
            raise ValueError(f"{kind}: an identity is text of at most 320 characters")
        if kind == "email" and value and "@" not in value:
            raise ValueError(f"{value!r} is not an email address")
    return identities


class PersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE]})
    display_name: str = Field(min_length=1, max_length=200)
    identities: dict[str, str] = Field(
        default_factory=dict, description=f"Kind → the person's id there. Kinds: {', '.join(KINDS)}."
    )

    _kinds = field_validator("identities")(_check_kinds)


class PersonPatch(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"identities": {"slack": "U024BE7LH", "discord": None}}]}
    )
    display_name: str | None = Field(None, min_length=1, max_length=200)
    identities: dict[str, str | None] = Field(
        default_factory=dict, description="Identities to set; null removes one; those not named stay."
    )

    _kinds = field_validator("identities")(_check_kinds)


class PersonOut(BaseModel):
    id: str
    display_name: str
    identities: dict[str, str]
    created_at: str | None
    updated_at: str | None


class ImportReport(BaseModel):
    created: list[str]
    updated: list[str]
    unchanged: int
    refused: list[dict[str, Any]] = Field(description="{line, reason} for each row not imported.")


async def _person(rt: Runtime, person_id: str) -> PersonOut:
    row = await get_row(rt, t.people, person_id, "person")
    pi = t.person_identities
    async with rt.engine.connect() as conn:
        ids = {r.kind: r.value for r in await conn.execute(sa.select(pi).where(pi.c.person_id == person_id))}
    return PersonOut(
        id=row["id"],
        display_name=row["display_name"],
        identities=ids,
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


def _taken(exc: IdentityTaken) -> HubError:
    return HubError(409, "identity_taken", str(exc), field=f"identities.{exc.kind}")


@router.post(
    "", status_code=201, response_model=PersonOut, summary="Add a person", responses=conflict("identity_taken")
)
async def create_person(body: PersonIn, rt: RuntimeDep, who: AdminKey) -> PersonOut:
    person_id, ts = new_id("per"), now()
    try:
        async with rt.engine.begin() as conn:
            await conn.execute(
                t.people.insert().values(id=person_id, display_name=body.display_name, created_at=ts, updated_at=ts)
            )
            await write_identities(conn, person_id, clean_identities(body.identities))
            await record(conn, who, "person", person_id, "create", ["display_name", *body.identities])
    except IdentityTaken as exc:
        raise _taken(exc) from None
    rt.cache.invalidate()
    return await _person(rt, person_id)


@router.get("", response_model=list[PersonOut], summary="List people, or find one by any identity")
async def list_people(
    rt: RuntimeDep,
    _: ReadKey,
    identity: Annotated[str | None, Query(description="kind:value, e.g. jira:557058:f58131cb")] = None,
    q: Annotated[str | None, Query(description="Part of the display name (any case).")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PersonOut]:
    async with rt.engine.connect() as conn:
        directory = await load_directory(conn)
    if identity is not None:
        kind, sep, value = identity.partition(":")
        if not sep or kind not in KINDS:
            raise invalid(f"identity is kind:value with a kind among {', '.join(KINDS)}", field="identity")
        found = directory.find(kind, value)
        people = [found] if found else []
    else:
        people = sorted(directory.people(), key=lambda p: (p.name.lower(), p.id))
        if q:
            people = [p for p in people if q.lower() in p.name.lower()]
    return [await _person(rt, p.id) for p in people[offset : offset + limit]]


@router.get(
    "/export",
    response_class=PlainTextResponse,
    summary="The directory as CSV",
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_people(rt: RuntimeDep, _: ReadKey) -> PlainTextResponse:
    async with rt.engine.connect() as conn:
        text = export_csv(await load_directory(conn))
    return PlainTextResponse(
        text, media_type="text/csv", headers={"Content-Disposition": "attachment; filename=people.csv"}
    )


@router.post("/import", response_model=ImportReport, summary="Create and update people from CSV (all or what is valid)")
async def import_people(
    rt: RuntimeDep,
    who: AdminKey,
    csv_text: Annotated[
        str, Body(media_type="text/csv", min_length=1, description="CSV with a header row (see export).")
    ],
) -> ImportReport:
    """Rows that cannot be imported are listed with their line and reason; the others are written in one
    transaction."""
    async with rt.engine.begin() as conn:
        try:
            plan = plan_import(csv_text, await load_directory(conn))
        except CsvError as exc:
            raise invalid(str(exc)) from None
        report = await apply_import(conn, plan, now())
        details = {k: len(v) if isinstance(v, list) else v for k, v in report.items()}
        await record(conn, who, "person", "*", "import", [], details)
    rt.cache.invalidate()
    return ImportReport.model_validate(report)


@router.get("/{person_id}", response_model=PersonOut, summary="Get a person")
async def get_person(person_id: str, rt: RuntimeDep, _: ReadKey) -> PersonOut:
    return await _person(rt, person_id)


@router.patch(
    "/{person_id}",
    response_model=PersonOut,
    summary="Rename, add or remove identities",
    responses=conflict("identity_taken"),
)
async def update_person(person_id: str, body: PersonPatch, rt: RuntimeDep, who: AdminKey) -> PersonOut:
    await get_row(rt, t.people, person_id, "person")
    try:
        async with rt.engine.begin() as conn:
            values: dict[str, Any] = {"updated_at": now()}
            if body.display_name is not None:
                values["display_name"] = body.display_name
            await conn.execute(sa.update(t.people).where(t.people.c.id == person_id).values(**values))
            await write_identities(conn, person_id, clean_identities(body.identities))
            await record(conn, who, "person", person_id, "update", body.model_fields_set | set(body.identities))
    except IdentityTaken as exc:
        raise _taken(exc) from None
    rt.cache.invalidate()
    return await _person(rt, person_id)


@router.delete("/{person_id}", status_code=204, summary="Remove a person")
async def delete_person(person_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    async with rt.engine.begin() as conn:
        await conn.execute(sa.delete(t.person_identities).where(t.person_identities.c.person_id == person_id))
        res = await conn.execute(sa.delete(t.people).where(t.people.c.id == person_id))
        if res.rowcount == 0:
            raise not_found("person", person_id)
        await record(conn, who, "person", person_id, "delete")
    rt.cache.invalidate()
