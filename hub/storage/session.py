"""Everything a fetch or a subscription call needs for one source: its provider, settings, credentials and
an API client carrying its bearer token."""

from __future__ import annotations

from dataclasses import dataclass

from hub.config_cache import SourceInfo
from hub.runtime import Runtime
from hub.storage.client import ProviderClient
from hub.storage.credentials import Credentials, SourceTokenStore, grant_for, load_credentials
from hub.storage.providers import provider_for
from hub.storage.providers.base import Provider
from hub.storage.settings import StorageSettings, parse_settings
from hub.targets.oauth import OAuth2Bearer, TokenCache

CONNECT_HINT = (
    "no OAuth2 credentials: connect the source (GET /api/v1/sources/{id}/oauth/start) "
    "or paste a refresh token (PUT /api/v1/sources/{id}/credentials)"
)


class NotReady(Exception):
    """The source cannot reach its provider's API yet (no credentials, a bad setting): said on the source."""


@dataclass(frozen=True)
class Session:
    source: SourceInfo
    provider: Provider
    cfg: StorageSettings
    credentials: Credentials
    api: ProviderClient
    tokens: TokenCache


def storage_settings(source: SourceInfo) -> StorageSettings:
    """The source's storage settings; Dropbox's client secret is the app secret, i.e. the source's secret."""
    cfg = parse_settings({**source.settings, **source.secret_settings})
    provider = provider_for(source.connector)
    if provider is not None and provider.secret_is_client_secret and not cfg.oauth_client_secret and source.secret:
        cfg = cfg.model_copy(update={"oauth_client_secret": source.secret})
    return cfg


async def open_session(rt: Runtime, source: SourceInfo) -> Session:
    provider = provider_for(source.connector)
    if provider is None:
        raise NotReady(f"connector {source.connector} has no change feed")
    try:
        cfg = storage_settings(source)
    except ValueError as exc:
        raise NotReady(str(exc)) from None
    if not cfg.oauth_client_id:
        raise NotReady("settings.oauth_client_id is not set (the OAuth app's client id)")
    creds = await load_credentials(rt.engine, source.id)
    if creds is None:
        raise NotReady(CONNECT_HINT.replace("{id}", source.id))
    tokens = TokenCache(rt.http, SourceTokenStore(rt.engine, rt.box), rt.egress)
    auth = OAuth2Bearer(grant_for(provider, cfg, creds), tokens)
    api = ProviderClient(rt.http, auth, provider.origins(cfg), rt.settings.delivery_timeout, rt.egress)
    return Session(source, provider, cfg, creds, api, tokens)
