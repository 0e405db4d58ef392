"""Targets: where posts go. Secret fields (tokens, secret URLs) are write-only and encrypted at rest."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import httpx
import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StrictBool, ValidationError

from hub.api.common import AdminKey, RatePerSecond, ReadKey, RetryStep, RuntimeDep, get_row, iso, now, reject_nulls
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.db import tables as t
from hub.delivery.breaker import make_waiting_due
from hub.errors import HubError, invalid, not_found
from hub.ids import new_id
from hub.runtime import Runtime
from hub.targets.base import Target, TargetConfig, redact_url
from hub.targets.egress import EgressBlocked, EgressPolicy
from hub.targets.registry import TARGETS, get_target
from hub.targets.secrets import merge, secret_names, split

_COMMON = {"kind", "name", "retry_schedule", "rate_limit_per_second", "enabled"}


class TargetCreateBase(BaseModel):
    """What every target has; each kind adds its own settings (see the kinds' schemas)."""

    kind: str
    name: str = Field(min_length=1, max_length=200)
    retry_schedule: list[RetryStep] | None = Field(
        None,
        description="Seconds before each retry (each at most 7 days); "
        "default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 14 h, 20 h, 24 h.",
        max_length=50,
    )
    rate_limit_per_second: RatePerSecond | None = None
    enabled: StrictBool = True


def _create_model(target: Target) -> type[TargetCreateBase]:
    """``{kind, name, …common, …the kind's settings}``, documented with the kind's example."""
    m = target.manifest
    name = "".join(part.capitalize() for part in target.kind.replace("-", " ").split()) + "TargetCreate"
    example = {"kind": target.kind, "name": m.title, **m.example}
    namespace: dict[str, Any] = {
        "__annotations__": {"kind": Literal.__getitem__(target.kind)},
        "kind": Field(description=f"{m.profile}; threading: {m.threading}; body limit {m.body_limit} {m.limit_unit}"),
        "model_config": ConfigDict(extra="forbid", title=name, json_schema_extra={"examples": [example]}),
        "__doc__": f"{m.title}: {m.description} Documentation: {m.docs}",
        "__module__": __name__,
    }
    return type(name, (TargetCreateBase, target.Config), namespace)


CREATE_MODELS = [_create_model(target) for target in TARGETS.values()]
if TYPE_CHECKING:
    TargetCreate = TargetCreateBase
else:
    TargetCreate = Annotated[Union[tuple(CREATE_MODELS)], Field(discriminator="kind")]  # noqa: UP007


def _config_error(exc: RequestValidationError) -> HubError | None:
    """A kind or a kind's setting that does not validate is ``invalid_config`` naming the field; other
    schema errors (a retry schedule of NaN…) stay ``invalid_request``."""
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        if err.get("type") in ("union_tag_invalid", "union_tag_not_found"):
            return invalid(f"unknown target kind; one of {sorted(TARGETS)}", field="kind")
        if len(loc) >= 2 and loc[0] == "body" and loc[1] in TARGETS and (len(loc) == 2 or loc[2] not in _COMMON):
            where = ".".join(loc[2:])
            return invalid(f"invalid {loc[1]} settings: {where or 'settings'}: {err.get('msg', '')}", field=where)
    return None


class TargetRoute(TextGuardRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                raise _config_error(exc) or exc from None

        return route


router = APIRouter(prefix="/api/v1/targets", tags=["targets"], route_class=TargetRoute)


class TargetUpdate(BaseModel):
    """Common fields and any of the kind's settings; nested settings (``oauth2``) are merged key by key,
    ``null`` removes an optional setting."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{"name": "renamed"}]})
    name: str | None = Field(None, min_length=1, max_length=200)
    url: str | None = None
    retry_schedule: list[RetryStep] | None = Field(None, max_length=50)
    rate_limit_per_second: RatePerSecond | None = None
    enabled: StrictBool | None = None


class TargetOut(BaseModel):
    id: str
    kind: str
    name: str
    url: str | None = Field(description="Redacted when the URL is a secret: its path is hidden.")
    settings: dict[str, Any]
    secrets_set: list[str] = Field(description="Secret settings that are set (never their values).")
    retry_schedule: list[float] | None
    rate_limit_per_second: float | None
    enabled: bool
    breaker_state: str
    disabled_reason: str | None = Field(None, description="Why the target was disabled (e.g. its URL is gone).")
    created_at: str | None
    updated_at: str | None


def _check_urls(config: BaseModel, egress: EgressPolicy) -> None:
    for where, url in _urls_of(config):
        try:
            egress.check_url(url)
        except EgressBlocked as exc:
            raise invalid(str(exc), field=where) from None
        if httpx.URL(url).userinfo:
            raise invalid("credentials in the URL are not supported: use the kind's token setting", field=where)


def _urls_of(model: BaseModel, prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        if isinstance(value, AnyUrl):
            out.append((prefix + name, str(value)))
        elif isinstance(value, BaseModel):
            out += _urls_of(value, f"{prefix}{name}.")
    return out


def validate_settings(target: Target, values: dict[str, Any], egress: EgressPolicy) -> TargetConfig:
    """A kind's settings validated (every URL must pass the egress policy); 422 naming the field."""
    try:
        config = target.Config.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise invalid(f"invalid {target.kind} settings: {where or 'settings'}: {first['msg']}", field=where) from None
    _check_urls(config, egress)
    return config


def _out(rt: Runtime, row: Any) -> TargetOut:
    secrets = rt.box.open_json(row["secrets_enc"])
    secret_url, plain_url = secrets.get("url"), row["config"].get("url")
    return TargetOut(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        url=redact_url(secret_url) if secret_url else plain_url,
        settings=row["config"],
        secrets_set=[n for n in secret_names(secrets) if n != "url"],
        retry_schedule=row["retry_schedule"],
        rate_limit_per_second=row["rate_limit_per_second"],
        enabled=row["enabled"],
        breaker_state=row["breaker_state"],
        disabled_reason=row.get("disabled_reason"),
        created_at=iso(row["created_at"]),
        updated_at=iso(row["updated_at"]),
    )


@router.post("", status_code=201, response_model=TargetOut, summary="Create a target")
async def create_target(body: TargetCreate, rt: RuntimeDep, who: AdminKey) -> TargetOut:
    target = TARGETS[body.kind]
    config = validate_settings(target, {k: getattr(body, k) for k in target.Config.model_fields}, rt.egress)
    plain, secrets = split(config)
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
        "disabled_reason": None,
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
        current = merge(row["config"], rt.box.open_json(row["secrets_enc"]))
        plain, secrets = split(validate_settings(target, merge(current, kind_values), rt.egress))
        changes["config"] = plain
        changes["secrets_enc"] = rt.box.seal_json(secrets) if secrets else None
    changes["updated_at"] = now()
    async with rt.engine.begin() as conn:
        await conn.execute(sa.update(t.targets).where(t.targets.c.id == target_id).values(**changes))
        if "config" in changes and changes["config"] != row["config"]:  # another channel, group, stream…:
            ta = t.thread_anchors  # its threads start anew (a rotated token keeps them)
            await conn.execute(sa.delete(ta).where(ta.c.target_id == target_id))
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
        await conn.execute(sa.delete(t.thread_anchors).where(t.thread_anchors.c.target_id == target_id))
        res = await conn.execute(sa.delete(t.targets).where(t.targets.c.id == target_id))
        if res.rowcount == 0:
            raise not_found("target", target_id)
        await record(conn, who, "target", target_id, "delete")
    rt.cache.invalidate()
