"""API keys: stored hashed, shown once."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from hub.api.common import AdminKey, RuntimeDep, iso, now
from hub.api.error_docs import conflict
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.auth.principal import SYSTEM, Principal
from hub.crypto import hash_api_key, new_api_key
from hub.db import tables as t
from hub.errors import HubError, not_found
from hub.ids import new_id

router = APIRouter(prefix="/api/v1/keys", tags=["keys"], route_class=TextGuardRoute)


class KeyCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["ci pipeline"])
    scope: Literal["admin", "read"] = "read"


class KeyOut(BaseModel):
    id: str
    name: str
    scope: str
    created_at: str | None


class KeyCreated(KeyOut):
    key: str = Field(description="Shown once; only its hash is stored.")


async def insert_key(engine: AsyncEngine, name: str, scope: str, key: str, who: Principal) -> dict[str, object]:
    """Store ``key`` (its hash) and record who created it, in one transaction."""
    row = {"id": new_id("key"), "name": name, "scope": scope, "key_hash": hash_api_key(key), "created_at": now()}
    async with engine.begin() as conn:
        await conn.execute(t.api_keys.insert().values(**row))
        await record(conn, who, "key", str(row["id"]), "create", ("name", "scope"))
    return row


async def count_keys(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(t.api_keys)) or 0)


async def bootstrap_admin_key(engine: AsyncEngine, key: str) -> bool:
    """Create ``key`` as an admin key when no key exists yet."""
    if await count_keys(engine):
        return False
    try:
        await insert_key(engine, "bootstrap admin", "admin", key, SYSTEM)
    except sa.exc.IntegrityError:  # another process starting at the same moment stored the same key
        return False
    return True


@router.post("", status_code=201, summary="Create an API key", response_model=KeyCreated)
async def create_key(body: KeyCreate, rt: RuntimeDep, who: AdminKey) -> KeyCreated:
    key = new_api_key()
    row = await insert_key(rt.engine, body.name, body.scope, key, who)
    return KeyCreated(id=str(row["id"]), name=body.name, scope=body.scope, created_at=iso(now()), key=key)


@router.get("", summary="List API keys", response_model=list[KeyOut])
async def list_keys(rt: RuntimeDep, _: AdminKey) -> list[KeyOut]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.api_keys).order_by(t.api_keys.c.created_at))).mappings()
        return [KeyOut(id=r["id"], name=r["name"], scope=r["scope"], created_at=iso(r["created_at"])) for r in rows]


@router.delete("/{key_id}", status_code=204, summary="Revoke an API key", responses=conflict("key_in_use"))
async def delete_key(key_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    if who.kind == "api_key" and who.id == key_id:  # no lock-out by a slip: another admin key revokes it
        raise HubError(409, "key_in_use", "a key cannot revoke itself: revoke it with another admin key")
    async with rt.engine.begin() as conn:
        res = await conn.execute(sa.delete(t.api_keys).where(t.api_keys.c.id == key_id))
        if res.rowcount == 0:
            raise not_found("key", key_id)
        await record(conn, who, "key", key_id, "delete")
