"""Sources: one per provider account that sends webhooks; the secret is write-only."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from hub.api.common import AdminKey, ReadKey, RuntimeDep, get_row, iso, now
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.connectors.verify import VerificationError, decode_key
from hub.db import tables as t
from hub.errors import invalid, not_found
from hub.ids import new_id
from hub.runtime import Runtime
from hub.storage.api import before_delete, source_storage
from hub.storage.settings import check_settings
from hub.storage.status import StorageState

router = APIRouter(prefix="/api/v1/sources", tags=["sources"], route_class=TextGuardRoute)


class SourceCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"connector": "github", "name": "acme org", "secret": "It's a Secret to Everybody"}]
        },
    )
    connector: str = Field(description="A connector id from GET /api/v1/connectors.")
    name: str = Field(min_length=1, max_length=200)
    secret: str | None = Field(None, description="Write-only; encrypted at rest, never returned.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Connector-specific settings; those the connector declares secret are write-only.",
    )
    enabled: StrictBool = True


DEFAULT_OVERLAP = 86400.0


class SourceUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "acme org (prod)"}, {"secret": "the new secret", "previous_secret_valid_for": 3600}]
        },
    )
    name: str | None = Field(None, min_length=1, max_length=200)
    secret: str | None = Field(
        None,
        description="A new secret (rotation): the current one stays valid for `previous_secret_valid_for`. "
        "`null` clears it (refused where the connector needs one).",
    )
    previous_secret_valid_for: float | None = Field(
        None,
        strict=True,
        ge=0,
        le=30 * 86400,
        description="Seconds the replaced secret is still accepted (default 86400 when `secret` changes); "
        "0 ends an overlap now.",
    )
    settings: dict[str, Any] | None = None
    enabled: StrictBool | None = None


class SourceOut(BaseModel):
    id: str
    connector: str
    name: str
    settings: dict[str, Any]
    enabled: bool
    has_secret: bool
    secret_settings_set: list[str] = Field(
        default_factory=list, description="Settings the connector declares secret that are set (never returned)."
    )
    previous_secret_valid_until: str | None = Field(
        None, description="During a secret rotation: until when the previous secret is still accepted."
    )
    ingest_url: str
    created_at: str | None
    updated_at: str | None
    storage: StorageState | None = Field(
        None,
        description="Dropbox, Microsoft Graph, Google Drive: fetches of what changed, the OAuth2 credentials "
        "(whether set, their expiry — never the tokens) and the provider subscription hub keeps alive.",
    )


def ingest_url(rt: Runtime, request: Request, source_id: str) -> str:
    base = rt.settings.public_url.rstrip("/") if rt.settings.public_url else str(request.base_url).rstrip("/")
    return f"{base}/hooks/{source_id}"


def _out(rt: Runtime, request: Request, row: Any, storage: StorageState | None = None) -> SourceOut:
    until = row.get("previous_secret_until")
    return SourceOut(
        id=row["id"],
        connector=row["connector"],
        name=row["name"],
        settings=row["settings"] or {},
        enabled=row["enabled"],
        has_secret=bool(row["secret_enc"]),
        secret_settings_set=sorted(rt.box.open_json(row.get("secret_settings_enc"))),
        previous_secret_valid_until=iso(until) if until and until > now() else None,
        ingest_url=ingest_url(rt, request, row["id"]),
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
        storage=storage,
    )


async def _with_storage(rt: Runtime, request: Request, row: Any) -> SourceOut:
    return _out(rt, request, row, (await source_storage(rt, [row], request)).get(str(row["id"])))


async def _validate(
    rt: Runtime, connector: str, secret: str | None, settings: dict[str, Any], secret_settings: dict[str, Any]
) -> None:
    spec = await rt.cache.connector(connector)
    if spec is None:
        raise invalid(f"unknown connector {connector!r}", field="connector")
    for name in spec.settings_schema.get("required", []):
        if settings.get(name) in (None, "") and secret_settings.get(name) in (None, ""):
            raise invalid(f"connector {connector} needs the setting {name!r}", field=f"settings.{name}")
    check_settings(connector, {**settings, **secret_settings})  # fetch-on-notify settings (hub/storage)
    try:
        sig = spec.signature_for(settings.get("signature"))
    except ValidationError as exc:
        raise invalid(f"invalid signature settings: {exc.errors()[0]['msg']}", field="settings.signature") from None
    except ValueError as exc:
        raise invalid(str(exc), field="settings.signature") from None
    # a hooks module may verify without a signature header (Graph's clientState): the spec's flag decides
    if (sig.scheme != "none" or spec.hooks is not None) and spec.secret_required and not secret:
        raise invalid(f"connector {connector} needs a secret", field="secret")
    if secret and sig.key_encoding != "utf8":
        try:
            decode_key(secret, sig.key_encoding)
        except VerificationError:
            raise invalid("the secret must be base64 (whsec_… for Standard Webhooks)", field="secret") from None


async def _split_settings(
    rt: Runtime, connector: str, given: dict[str, Any], stored: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Plain settings, and the secret ones (write-only): a secret setting left out keeps its stored value,
    ``null`` removes it."""
    spec = await rt.cache.connector(connector)
    names = set(spec.secret_settings) if spec else set()
    plain = {k: v for k, v in given.items() if k not in names}
    secret = {**stored, **{k: v for k, v in given.items() if k in names}}
    return plain, {k: v for k, v in secret.items() if v is not None}


def _seal_settings(rt: Runtime, secret_settings: dict[str, Any]) -> str | None:
    return rt.box.seal_json(secret_settings) if secret_settings else None


@router.post("", status_code=201, response_model=SourceOut, summary="Create a source")
async def create_source(body: SourceCreate, request: Request, rt: RuntimeDep, who: AdminKey) -> SourceOut:
    settings, secret_settings = await _split_settings(rt, body.connector, body.settings, {})
    await _validate(rt, body.connector, body.secret, settings, secret_settings)
    ts = now()
    row = {
        "id": new_id("src"),
        "connector": body.connector,
        "name": body.name,
        "secret_enc": rt.box.seal(body.secret) if body.secret else None,
        "secret_settings_enc": _seal_settings(rt, secret_settings),
        "settings": settings,
        "enabled": body.enabled,
        "created_at": ts,
        "updated_at": ts,
    }
    async with rt.engine.begin() as conn:
        await conn.execute(t.sources.insert().values(**row))
        await record(conn, who, "source", str(row["id"]), "create", body.model_fields_set)
    rt.cache.invalidate()
    return await _with_storage(rt, request, row)


@router.get("", response_model=list[SourceOut], summary="List sources")
async def list_sources(request: Request, rt: RuntimeDep, _: ReadKey) -> list[SourceOut]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.sources).order_by(t.sources.c.id))).mappings().all()
    storage = await source_storage(rt, list(rows), request)
    return [_out(rt, request, r, storage.get(r["id"])) for r in rows]


@router.get("/{source_id}", response_model=SourceOut, summary="Get a source")
async def get_source(source_id: str, request: Request, rt: RuntimeDep, _: ReadKey) -> SourceOut:
    return await _with_storage(rt, request, await get_row(rt, t.sources, source_id, "source"))


@router.patch("/{source_id}", response_model=SourceOut, summary="Update a source (rotate its secret)")
async def update_source(
    source_id: str, body: SourceUpdate, request: Request, rt: RuntimeDep, who: AdminKey
) -> SourceOut:
    row = dict(await get_row(rt, t.sources, source_id, "source"))
    changes: dict[str, Any] = {"updated_at": now()}
    if body.name is not None:
        changes["name"] = body.name
    secret_settings = rt.box.open_json(row["secret_settings_enc"])
    if body.settings is not None:
        changes["settings"], secret_settings = await _split_settings(
            rt, row["connector"], body.settings, secret_settings
        )
        changes["secret_settings_enc"] = _seal_settings(rt, secret_settings)
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    clear = "secret" in body.model_fields_set and body.secret is None
    current = None if clear or not row["secret_enc"] else rt.box.open(row["secret_enc"])
    secret = body.secret if body.secret is not None else current
    settings = changes["settings"] if "settings" in changes else (row["settings"] or {})
    await _validate(rt, row["connector"], secret, settings, secret_settings)
    if clear:  # an admin clearing the secret (Asana: the next handshake teaches a new one)
        changes.update(secret_enc=None, previous_secret_enc=None, previous_secret_until=None)
    else:
        changes.update(_rotation(rt, row, body, changes["updated_at"]))
    async with rt.engine.begin() as conn:
        await conn.execute(sa.update(t.sources).where(t.sources.c.id == source_id).values(**changes))
        await record(conn, who, "source", source_id, "update", body.model_fields_set)
    rt.cache.invalidate()
    return await _with_storage(rt, request, {**row, **changes})


def _rotation(rt: Runtime, row: dict[str, Any], body: SourceUpdate, ts: float) -> dict[str, Any]:
    """A new secret keeps the one it replaces valid for an overlap, so in-flight webhooks still verify."""
    overlap = body.previous_secret_valid_for
    ended = {"previous_secret_enc": None, "previous_secret_until": None}
    if body.secret is not None:
        if row["secret_enc"] and rt.box.open(row["secret_enc"]) == body.secret:
            return {}  # the same secret again: nothing rotates
        keep = DEFAULT_OVERLAP if overlap is None else overlap
        changes = {"secret_enc": rt.box.seal(body.secret)}
        if keep and row["secret_enc"]:
            return {**changes, "previous_secret_enc": row["secret_enc"], "previous_secret_until": ts + keep}
        return {**changes, **ended}
    if overlap is not None and row["previous_secret_enc"]:  # shorten or end the current overlap
        return {"previous_secret_until": ts + overlap} if overlap else ended
    return {}


@router.delete("/{source_id}", status_code=204, summary="Delete a source and its routes")
async def delete_source(source_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    await before_delete(rt, source_id)  # its provider subscription and storage state (hub/storage)
    async with rt.engine.begin() as conn:
        await conn.execute(sa.delete(t.routes).where(t.routes.c.source_id == source_id))
        res = await conn.execute(sa.delete(t.sources).where(t.sources.c.id == source_id))
        if res.rowcount == 0:
            raise not_found("source", source_id)
        await record(conn, who, "source", source_id, "delete")
    rt.cache.invalidate()
