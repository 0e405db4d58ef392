"""Targets: where posts go. Secret fields (tokens, secret URLs) are write-only and encrypted at rest."""

from __future__ import annotations

from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hub.api.common import AdminKey, RatePerSecond, ReadKey, RetryStep, RuntimeDep, get_row, iso, now, reject_nulls
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.db import tables as t
from hub.delivery.breaker import make_waiting_due
from hub.errors import invalid, not_found
from hub.ids import new_id
from hub.runtime import Runtime
from hub.targets.base import Target, redact_url
from hub.targets.egress import EgressBlocked, EgressPolicy
from hub.targets.registry import TARGETS, get_target

router = APIRouter(prefix="/api/v1/targets", tags=["targets"], route_class=TextGuardRoute)
_COMMON = {"kind", "name", "retry_schedule", "rate_limit_per_second", "enabled"}


class TargetCreate(BaseModel):
    """Common fields; every other field is a setting of the kind (``url``, ``bearer_token``, …)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "kind": "webhook",
                    "name": "ops receiver",
                    "url": "https://example.com/hook",
                    "bearer_token": "s3cr3t",
                },
                {
                    "kind": "talkspirit",
                    "name": "engineering feed",
                    "url": "https://webhook.talkspirit.com/v1/incoming/TOKEN",
                },
                {"kind": "inbox", "name": "try it out"},
            ]
        },
    )
    kind: str = Field(description="webhook | talkspirit | slack | inbox")
    name: str = Field(min_length=1, max_length=200)
    url: str | None = None
    retry_schedule: list[RetryStep] | None = Field(
        None,
        description="Seconds before each retry (each at most 7 days); "
        "default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h, 24 h.",
        max_length=50,
    )
    rate_limit_per_second: RatePerSecond | None = None
    enabled: bool = True


class TargetUpdate(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"name": "renamed"}]})
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = None
    retry_schedule: list[RetryStep] | None = Field(None, max_length=50)
    rate_limit_per_second: RatePerSecond | None = None
    enabled: bool | None = None


class TargetOut(BaseModel):
    id: str
    kind: str
    name: str
    url: str | None = Field(description="Redacted: the path of a secret URL is hidden.")
    settings: dict[str, Any]
    secrets_set: list[str]
    retry_schedule: list[float] | None
    rate_limit_per_second: float | None
    enabled: bool
    breaker_state: str
    created_at: str | None
    updated_at: str | None


def split_settings(
    target: Target, values: dict[str, Any], egress: EgressPolicy
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a kind's settings (a URL must pass the egress policy) and split them into (plain, secrets)."""
    try:
        cfg = target.Config.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise invalid(f"invalid {target.kind} settings: {where}: {first['msg']}", field=where) from None
    data = cfg.model_dump(mode="json", exclude_none=True)
    if isinstance(data.get("url"), str):
        try:
            egress.check_url(data["url"])
        except EgressBlocked as exc:
            raise invalid(str(exc), field="url") from None
        if httpx.URL(data["url"]).userinfo:
            raise invalid("credentials in the URL are not supported: use the kind's token setting", field="url")
    secrets = {k: v for k, v in data.items() if k in target.secret_fields}
    plain = {k: v for k, v in data.items() if k not in target.secret_fields}
    return plain, secrets


def _out(rt: Runtime, row: Any) -> TargetOut:
    secrets = rt.box.open_json(row["secrets_enc"])
    url = secrets.get("url") or row["config"].get("url")
    return TargetOut(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        url=redact_url(url) if url else None,
        settings=row["config"],
        secrets_set=sorted(k for k in secrets if k != "url"),
        retry_schedule=row["retry_schedule"],
        rate_limit_per_second=row["rate_limit_per_second"],
        enabled=row["enabled"],
        breaker_state=row["breaker_state"],
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


@router.post("", status_code=201, response_model=TargetOut, summary="Create a target")
async def create_target(body: TargetCreate, rt: RuntimeDep, who: AdminKey) -> TargetOut:
    target = get_target(body.kind)
    if target is None:
        raise invalid(f"unknown target kind {body.kind!r}; one of {sorted(TARGETS)}", field="kind")
    kind_values = {k: v for k, v in body.model_dump(exclude_none=True).items() if k not in _COMMON}
    plain, secrets = split_settings(target, kind_values, rt.egress)
    ts = now()
    row = {
        "id": new_id("tgt"),
        "kind": body.kind,
        "name": body.name,
        "config": plain,
        "secrets_enc": rt.box.seal_json(secrets) if secrets else None,
        "retry_schedule": body.retry_schedule,
        "rate_limit_per_second": body.rate_limit_per_second,
        "breaker_state": "closed",
        "consecutive_failures": 0,
        "enabled": body.enabled,
        "created_at": ts,
        "updated_at": ts,
    }
    async with rt.engine.begin() as conn:
        await conn.execute(t.targets.insert().values(**row))
        await record(conn, who, "target", str(row["id"]), "create", body.model_dump(exclude_unset=True).keys())
    rt.cache.invalidate()
    return _out(rt, row)


@router.get("", response_model=list[TargetOut], summary="List targets")
async def list_targets(rt: RuntimeDep, _: ReadKey) -> list[TargetOut]:
    async with rt.engine.connect() as conn:
        rows = (await conn.execute(sa.select(t.targets).order_by(t.targets.c.id))).mappings().all()
    return [_out(rt, r) for r in rows]


@router.get("/{target_id}", response_model=TargetOut, summary="Get a target")
async def get_target_by_id(target_id: str, rt: RuntimeDep, _: ReadKey) -> TargetOut:
    return _out(rt, await get_row(rt, t.targets, target_id, "target"))


@router.patch("/{target_id}", response_model=TargetOut, summary="Update a target")
async def update_target(target_id: str, body: TargetUpdate, rt: RuntimeDep, who: AdminKey) -> TargetOut:
    row = dict(await get_row(rt, t.targets, target_id, "target"))
    target = get_target(row["kind"])
    if target is None:
        raise invalid(f"unknown target kind {row['kind']!r}")
    given = body.model_dump(exclude_unset=True)
    reject_nulls(given, "name", "enabled")
    changes: dict[str, Any] = {
        k: given[k] for k in ("name", "retry_schedule", "rate_limit_per_second", "enabled") if k in given
    }
    kind_values = {k: v for k, v in given.items() if k not in _COMMON}
    if kind_values:
        merged = {**row["config"], **rt.box.open_json(row["secrets_enc"]), **kind_values}
        plain, secrets = split_settings(target, {k: v for k, v in merged.items() if v is not None}, rt.egress)
        changes["config"] = plain
        changes["secrets_enc"] = rt.box.seal_json(secrets) if secrets else None
    changes["updated_at"] = now()
    async with rt.engine.begin() as conn:
        await conn.execute(sa.update(t.targets).where(t.targets.c.id == target_id).values(**changes))
        await record(conn, who, "target", target_id, "update", given.keys())
        if changes.get("enabled") and not row["enabled"]:
            await make_waiting_due(conn, target_id, changes["updated_at"])
    rt.cache.invalidate()
    await rt.dispatcher.notify()
    return _out(rt, {**row, **changes})


@router.delete("/{target_id}", status_code=204, summary="Delete a target and its routes")
async def delete_target(target_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    async with rt.engine.begin() as conn:
        await conn.execute(sa.delete(t.routes).where(t.routes.c.target_id == target_id))
        res = await conn.execute(sa.delete(t.targets).where(t.targets.c.id == target_id))
        if res.rowcount == 0:
            raise not_found("target", target_id)
        await record(conn, who, "target", target_id, "delete")
    rt.cache.invalidate()
