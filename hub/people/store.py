"""People in the database: load the directory, write people with their identities."""

from __future__ import annotations

from collections.abc import Mapping

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.db import tables as t
from hub.ids import new_id
from hub.people.csv_io import ImportPlan
from hub.people.directory import Directory, Person, normalise


async def load_directory(conn: AsyncConnection) -> Directory:
    identities: dict[str, dict[str, str]] = {}
    for row in await conn.execute(sa.select(t.person_identities)):
        identities.setdefault(row.person_id, {})[row.kind] = row.value
    people = await conn.execute(sa.select(t.people.c.id, t.people.c.display_name))
    return Directory(Person(r.id, r.display_name, identities.get(r.id, {})) for r in people)


class IdentityTaken(Exception):
    def __init__(self, kind: str, value: str, person_id: str) -> None:
        super().__init__(f"{kind} {value!r} belongs to {person_id}")
        self.kind, self.value, self.person_id = kind, value, person_id


async def owners(conn: AsyncConnection, identities: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """Who holds each of these identities now."""
    pi = t.person_identities
    out: dict[tuple[str, str], str] = {}
    for kind, value in identities.items():
        found = await conn.scalar(sa.select(pi.c.person_id).where(pi.c.kind == kind, pi.c.value == value))
        if found is not None:
            out[(kind, value)] = found
    return out


def clean_identities(identities: Mapping[str, str | None]) -> dict[str, str | None]:
    """Identities as stored (emails and logins lower-cased); None or "" removes one."""
    return {k: (normalise(k, v) if v and v.strip() else None) for k, v in identities.items()}


async def write_identities(conn: AsyncConnection, person_id: str, identities: Mapping[str, str | None]) -> None:
    """Set (or with None remove) identities of a person; IdentityTaken when another person holds one."""
    pi = t.person_identities
    wanted = {k: v for k, v in identities.items() if v}
    for (kind, value), holder in (await owners(conn, wanted)).items():
        if holder != person_id:
            raise IdentityTaken(kind, value, holder)
    for kind, new in identities.items():
        await conn.execute(sa.delete(pi).where(pi.c.person_id == person_id, pi.c.kind == kind))
        if new:
            await conn.execute(pi.insert().values(kind=kind, value=new, person_id=person_id))


async def apply_import(conn: AsyncConnection, plan: ImportPlan, now: float) -> dict[str, object]:
    """Write a planned import in the caller's transaction; the report of what was done."""
    created: list[str] = []
    updated: list[str] = []
    for change in plan.changes:
        if change.person_id is None:
            person_id = new_id("per")
            await conn.execute(
                t.people.insert().values(id=person_id, display_name=change.display_name, created_at=now, updated_at=now)
            )
            created.append(person_id)
        else:
            person_id = change.person_id
            await conn.execute(
                sa.update(t.people)
                .where(t.people.c.id == person_id)
                .values(display_name=change.display_name, updated_at=now)
            )
            updated.append(person_id)
        await write_identities(conn, person_id, dict(change.identities))
    return {"created": created, "updated": updated, "unchanged": plan.unchanged, "refused": plan.refused}
