"""The storage API of a source: its state, OAuth2 consent (start, callback), pasted credentials, a fetch or a
subscription renewal on demand. Tokens go in, never out."""

from __future__ import annotations

import logging
import time
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from hub.api.common import AdminKey, ReadKey, RuntimeDep, get_row
from hub.api.text_guard import TextGuardRoute
from hub.audit import record
from hub.auth.principal import Principal
from hub.config_cache import SourceInfo
from hub.db import tables as t
from hub.errors import HubError, invalid
from hub.runtime import Runtime
from hub.storage.credentials import (
    Credentials,
    authorization_url,
    delete_credentials,
    exchange_code,
    load_credentials,
    make_grant,
    new_state,
    open_state,
    store_credentials,
)
from hub.storage.cursors import ensure_feed, request_fetch, reset_feeds
from hub.storage.fetch import JOB as FETCH_JOB
from hub.storage.providers import provider_for
from hub.storage.providers.base import Provider
from hub.storage.session import storage_settings
from hub.storage.settings import StorageSettings
from hub.storage.status import CALLBACK_PATH, StorageState, callback_url, storage_states
from hub.storage.subscriptions import JOB as SUBSCRIPTION_JOB
from hub.storage.subscriptions import drop_subscription, maintain_subscriptions, request_check
from hub.targets.oauth import TokenCache, TokenError

log = logging.getLogger("hub.storage")
router = APIRouter(tags=["storage"], route_class=TextGuardRoute)


def _refusals(answers: dict[int, list[tuple[str, str]]]) -> dict[int | str, dict[str, Any]]:
    """``responses=`` naming each error code an operation may answer, with an example of each."""
    return {
        status: {
            "description": " / ".join(code for code, _ in cases) or "The request breaks a rule (see the examples)",
            "content": {
                "application/json": {
                    "examples": {code: {"value": {"error": {"code": code, "message": msg}}} for code, msg in cases}
                }
            },
        }
        for status, cases in answers.items()
    }


_NOT_STORAGE = (409, [("not_a_storage_source", "connector github has no change feed to fetch")])
_NO_SOURCE = (404, [("source_not_found", "no source with id 'src_…'")])


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _storage_source(
    rt: Runtime, source_id: str, fresh: bool = True
) -> tuple[SourceInfo, Provider, StorageSettings]:
    await get_row(rt, t.sources, source_id, "source")
    if fresh:
        rt.cache.invalidate()  # a change made a moment ago (its settings, in another process) must count
    source = await rt.cache.source(source_id)
    if source is None:
        raise HubError(404, "source_not_found", f"no source with id {source_id!r}")
    provider = provider_for(source.connector)
    if provider is None:
        raise HubError(409, "not_a_storage_source", f"connector {source.connector} has no change feed to fetch")
    try:
        cfg = storage_settings(source)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return source, provider, cfg


async def _state(rt: Runtime, source_id: str, base: str) -> StorageState:
    row = await get_row(rt, t.sources, source_id, "source")
    return (await storage_states(rt, [row], base))[source_id]


async def _kick(rt: Runtime, source_id: str) -> None:
    if rt.background is not None:
        await rt.background(FETCH_JOB, source_id)
        await rt.background(SUBSCRIPTION_JOB, source_id)


async def _connected(rt: Runtime, source_id: str, previous: Credentials | None, account: str | None) -> None:
    """New credentials: a fetch at once — from the stored cursor when they are for the same account (changes
    made while the old ones were refused are caught up), else from now; the subscription is made at once."""
    if previous is not None and previous.account and account and previous.account != account:
        await reset_feeds(rt.engine, source_id)
    await ensure_feed(rt.engine, source_id, "")
    await request_check(rt.engine, source_id)
    await _kick(rt, source_id)


@router.get(
    "/api/v1/sources/{source_id}/storage",
    response_model=StorageState,
    summary="A storage source's fetches, credentials (never shown) and provider subscription",
    responses=_refusals(dict([_NO_SOURCE, _NOT_STORAGE, (422, [])])),
)
async def get_storage(source_id: str, request: Request, rt: RuntimeDep, _: ReadKey) -> StorageState:
    await _storage_source(rt, source_id, fresh=False)
    return await _state(rt, source_id, _base(request))


@router.get(
    "/api/v1/sources/{source_id}/oauth/start",
    status_code=302,
    response_class=RedirectResponse,
    summary="Start the OAuth2 consent: redirects to the provider (with Accept: application/json, its URL)",
    responses={
        200: {"description": "The provider's authorization URL, as JSON (Accept: application/json)"},
        **_refusals(
            {
                404: _NO_SOURCE[1],
                409: [*_NOT_STORAGE[1], ("no_consent_needed", "client credentials need no consent")],
                422: [],
            }
        ),
    },
)
async def oauth_start(source_id: str, request: Request, rt: RuntimeDep, who: AdminKey) -> Response:
    source, provider, cfg = await _storage_source(rt, source_id)
    if cfg.oauth_grant == "client_credentials":
        raise HubError(409, "no_consent_needed", "client credentials need no consent: PUT …/credentials")
    if not cfg.oauth_client_id:
        raise invalid(
            "set settings.oauth_client_id (the OAuth app's client id) first", field="settings.oauth_client_id"
        )
    state = new_state(source.id, callback_url(rt, _base(request)), who, time.time())
    url = authorization_url(provider, cfg, rt.box, state)
    await record(rt.engine, who, "source", source.id, "oauth_start")
    if "application/json" in request.headers.get("accept", ""):
        return JSONResponse({"authorize_url": url, "redirect_uri": state.redirect_uri})
    return RedirectResponse(url, status_code=302)


class Connected(BaseModel):
    source_id: str
    connected: bool
    account: str | None = None


@router.get(
    CALLBACK_PATH,
    response_model=Connected,
    summary="Where the provider sends the admin back after consent: the code becomes the source's tokens",
    responses=_refusals(
        {
            400: [
                ("invalid_state", "the consent's state is unknown or expired: start again"),
                ("consent_refused", "the provider did not grant access"),
                ("missing_code", "the provider sent no authorization code"),
                ("code_exchange_failed", "the provider refused the code"),
            ],
            502: [("code_exchange_failed", "the provider did not answer the code exchange")],
        }
    ),
)
async def oauth_callback(
    request: Request,
    rt: RuntimeDep,
    state: Annotated[str, Query(description="The sealed state hub sent with the consent request.")] = "",
    code: Annotated[str, Query(description="The authorization code to exchange for tokens.")] = "",
    error: Annotated[str, Query(description="Set by the provider when the admin refused access.")] = "",
    error_description: Annotated[str, Query(description="The provider's explanation of `error`.")] = "",
) -> Connected:
    consent = open_state(rt.box, state, time.time()) if state else None
    if consent is None:
        raise HubError(400, "invalid_state", "the consent's state is unknown or expired: start again")
    if error:
        raise HubError(
            400, "consent_refused", f"the provider did not grant access: {(error_description or error)[:200]}"
        )
    if not code:
        raise HubError(400, "missing_code", "the provider sent no authorization code")
    source, provider, cfg = await _storage_source(rt, consent.source_id)
    try:
        exchanged = await exchange_code(rt.http, rt.egress, provider, cfg, code, consent, time.time())
    except TokenError as exc:
        raise HubError(502 if exc.outcome == "retry" else 400, "code_exchange_failed", str(exc)[:300]) from None
    previous = await load_credentials(rt.engine, source.id)
    await store_credentials(rt.engine, rt.box, source.id, "authorization_code", exchanged.token, exchanged.account)
    who = Principal(consent.actor_kind, consent.actor_id, consent.actor_name, "admin")  # type: ignore[arg-type]
    await record(rt.engine, who, "source", source.id, "connect", ["credentials"])
    log.info("storage source connected", extra={"source_id": source.id})
    await _connected(rt, source.id, previous, exchanged.account)
    return Connected(source_id=source.id, connected=True, account=exchanged.account)


class CredentialsIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"grant": "refresh_token", "refresh_token": "…"}, {"grant": "client_credentials"}]
        },
    )
    grant: Literal["refresh_token", "client_credentials"] = "refresh_token"
    refresh_token: SecretStr | None = Field(None, description="Write-only; encrypted at rest, never returned.")


@router.put(
    "/api/v1/sources/{source_id}/credentials",
    response_model=StorageState,
    summary="Set a source's credentials: a pasted refresh token, or client credentials (tested at once)",
    responses=_refusals(
        {
            404: _NO_SOURCE[1],
            409: _NOT_STORAGE[1],
            422: [],
            502: [("credentials_refused", "the token endpoint did not answer")],
        }
    ),
)
async def put_credentials(
    source_id: str, body: CredentialsIn, request: Request, rt: RuntimeDep, who: AdminKey
) -> StorageState:
    source, provider, cfg = await _storage_source(rt, source_id)
    if not cfg.oauth_client_id:
        raise invalid(
            "set settings.oauth_client_id (the OAuth app's client id) first", field="settings.oauth_client_id"
        )
    if body.grant == "client_credentials":
        if cfg.oauth_grant != "client_credentials":
            raise invalid("set settings.oauth_grant to client_credentials first", field="grant")
        pasted = None
    else:
        pasted = body.refresh_token.get_secret_value().strip() if body.refresh_token else ""
        if not pasted:
            raise invalid("a refresh_token is required", field="refresh_token")
    try:  # a token now: refused credentials are refused here, not at the first notification
        grant = make_grant(provider, cfg, body.grant, refresh_token=pasted)
        token = await TokenCache(rt.http, None, rt.egress).current(grant)
    except TokenError as exc:
        status = 502 if exc.outcome == "retry" else 422
        raise HubError(status, "credentials_refused", str(exc)[:300]) from None
    previous = await load_credentials(rt.engine, source.id)
    creds = await store_credentials(rt.engine, rt.box, source.id, body.grant, token)
    await record(rt.engine, who, "source", source.id, "set_credentials", ["credentials"], {"grant": creds.grant})
    await _connected(rt, source.id, previous, None)
    return await _state(rt, source.id, _base(request))


@router.delete(
    "/api/v1/sources/{source_id}/credentials",
    status_code=204,
    summary="Remove a source's credentials",
    responses=_refusals(
        {
            404: [*_NO_SOURCE[1], ("credentials_not_found", "the source has no credentials")],
            409: _NOT_STORAGE[1],
            422: [],
        }
    ),
)
async def remove_credentials(source_id: str, rt: RuntimeDep, who: AdminKey) -> None:
    source, _, _ = await _storage_source(rt, source_id)
    await drop_subscription(rt, source.id)  # while the credentials still allow it
    if not await delete_credentials(rt.engine, source.id):
        raise HubError(404, "credentials_not_found", "the source has no credentials")
    await record(rt.engine, who, "source", source.id, "remove_credentials", ["credentials"])


class FetchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reset: bool = Field(
        False, description="Forget the cursor: start again from now (what changed meanwhile is skipped)."
    )


@router.post(
    "/api/v1/sources/{source_id}/storage/fetch",
    status_code=202,
    response_model=StorageState,
    summary="Fetch the source's changes now (or start its feed again from now)",
    responses=_refusals(
        {
            404: _NO_SOURCE[1],
            409: [*_NOT_STORAGE[1], ("fetch_not_enabled", "set settings.fetch_changes to true first")],
            422: [],
        }
    ),
)
async def fetch_now(
    source_id: str, request: Request, rt: RuntimeDep, who: AdminKey, body: FetchIn | None = None
) -> StorageState:
    source, _, cfg = await _storage_source(rt, source_id)
    if not cfg.fetch_changes:
        raise HubError(409, "fetch_not_enabled", "set settings.fetch_changes to true first")
    if body is not None and body.reset:
        await reset_feeds(rt.engine, source.id)
    await request_fetch(rt.engine, source.id, [""], None)
    await record(rt.engine, who, "source", source.id, "fetch", details={"reset": bool(body and body.reset)})
    if rt.background is not None:
        await rt.background(FETCH_JOB, source.id)
    return await _state(rt, source.id, _base(request))


@router.post(
    "/api/v1/sources/{source_id}/storage/subscription",
    response_model=StorageState,
    summary="Create or renew the source's provider subscription now (its outcome is in the answer)",
    responses=_refusals(
        {
            404: _NO_SOURCE[1],
            409: [*_NOT_STORAGE[1], ("no_subscription_api", "dropbox: the subscription is set up at the provider")],
            422: [],
        }
    ),
)
async def subscription_now(source_id: str, request: Request, rt: RuntimeDep, who: AdminKey) -> StorageState:
    source, provider, _ = await _storage_source(rt, source_id)
    if not provider.max_subscription_hours:
        raise HubError(409, "no_subscription_api", f"{source.connector}: the subscription is set up at the provider")
    await request_check(rt.engine, source.id)
    await maintain_subscriptions(rt, source.id)
    await record(rt.engine, who, "source", source.id, "renew_subscription")
    return await _state(rt, source.id, _base(request))


async def source_storage(rt: Runtime, rows: list[Any], request: Request) -> dict[str, StorageState]:
    """For the sources API: the storage state of each storage source among ``rows``."""
    return await storage_states(rt, rows, _base(request))


async def before_delete(rt: Runtime, source_id: str) -> None:
    """For the sources API: a deleted source's provider subscription is deleted (best effort), its storage
    rows go."""
    if await _is_storage(rt, source_id):
        try:
            await drop_subscription(rt, source_id)
        except Exception:
            log.exception("could not delete the provider subscription", extra={"source_id": source_id})
    from hub.storage.store import forget

    async with rt.engine.begin() as conn:
        await forget(conn, source_id)


async def _is_storage(rt: Runtime, source_id: str) -> bool:
    async with rt.engine.connect() as conn:
        connector = await conn.scalar(sa.select(t.sources.c.connector).where(t.sources.c.id == source_id))
    return connector is not None and provider_for(str(connector)) is not None
