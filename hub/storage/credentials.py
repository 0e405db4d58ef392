"""A source's OAuth2 credentials for its provider's API, through authlib and hub's token cache.

- Authorization code with PKCE (Dropbox, Drive, Graph delegated): ``authorization_url`` sends the admin to the
  provider with a sealed, expiring ``state`` (source, PKCE verifier, who started it); ``exchange_code`` turns
  the callback's code into tokens. An admin may instead paste a refresh token.
- Client credentials (Graph application permissions): nothing to consent to; tokens are asked for when needed.

Tokens are sealed in ``source_credentials`` (never returned nor logged; the API shows whether credentials are
set and when the access token expires), refreshed before expiry and once more on a 401 by
:class:`hub.targets.oauth.TokenCache`, saved back (a rotated refresh token survives a restart). Replacing the
credentials changes their ``generation``: a cached token of the old ones is never used again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hub.crypto import SecretBox
from hub.db import tables as t
from hub.ids import new_id
from hub.storage.providers.base import Provider
from hub.storage.settings import StorageSettings
from hub.targets.egress import EgressPolicy
from hub.targets.oauth import (
    ClientAuthMethod,
    Grant,
    Token,
    TokenError,
    client_authenticated,
    parse_token_answer,
    post_token_request,
)

GrantKind = Literal["authorization_code", "refresh_token", "client_credentials"]
STATE_TTL = 600.0  # seconds an admin has to consent
STATE_PURPOSE = "storage-oauth-state"
AUTH_METHOD: ClientAuthMethod = "client_secret_post"  # what Dropbox, Google and Microsoft all document


@dataclass(frozen=True)
class Credentials:
    source_id: str
    grant: GrantKind
    generation: str
    account: str | None
    account_name: str | None
    expires_at: float | None
    last_error: str | None
    created_at: float
    updated_at: float

    @property
    def store_key(self) -> str:
        return f"source:{self.source_id}:{self.generation}"


def _row(r: Any) -> Credentials:
    return Credentials(
        r.source_id,
        r.grant,
        r.generation,
        r.account,
        r.account_name,
        r.expires_at,
        r.last_error,
        r.created_at,
        r.updated_at,
    )


_COLUMNS = [c for c in t.source_credentials.c if c.name != "token_enc"]


async def load_credentials(db: AsyncEngine | AsyncConnection, source_id: str) -> Credentials | None:
    sc = t.source_credentials
    stmt = sa.select(*_COLUMNS).where(sc.c.source_id == source_id)
    if isinstance(db, AsyncConnection):
        row = (await db.execute(stmt)).first()
    else:
        async with db.connect() as conn:
            row = (await conn.execute(stmt)).first()
    return None if row is None else _row(row)


async def credentials_of(engine: AsyncEngine, source_ids: list[str]) -> dict[str, Credentials]:
    if not source_ids:
        return {}
    sc = t.source_credentials
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(*_COLUMNS).where(sc.c.source_id.in_(source_ids)))).all()
    return {r.source_id: _row(r) for r in rows}


async def store_credentials(
    engine: AsyncEngine,
    box: SecretBox,
    source_id: str,
    grant: GrantKind,
    token: Token | None,
    account: str | None = None,
    account_name: str | None = None,
    now: float | None = None,
) -> Credentials:
    """Replace a source's credentials (a new generation)."""
    now = time.time() if now is None else now
    sc = t.source_credentials
    values = {
        "source_id": source_id,
        "grant": grant,
        "token_enc": box.seal(json.dumps(token.as_dict())) if token else None,
        "generation": new_id("gen"),
        "account": account,
        "account_name": account_name,
        "expires_at": token.expires_at if token else None,
        "last_error": None,
        "created_at": now,
        "updated_at": now,
    }
    async with engine.begin() as conn:
        await conn.execute(sa.delete(sc).where(sc.c.source_id == source_id))
        await conn.execute(sc.insert().values(**values))
    return Credentials(
        source_id,
        grant,
        str(values["generation"]),
        account,
        account_name,
        token.expires_at if token else None,
        None,
        now,
        now,
    )


async def delete_credentials(engine: AsyncEngine, source_id: str) -> bool:
    sc = t.source_credentials
    async with engine.begin() as conn:
        res = await conn.execute(sa.delete(sc).where(sc.c.source_id == source_id))
    return bool(res.rowcount)


async def update_account(engine: AsyncEngine, creds: Credentials, account: str, name: str) -> None:
    sc = t.source_credentials
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(sc)
            .where(sc.c.source_id == creds.source_id, sc.c.generation == creds.generation)
            .values(account=account[:300], account_name=name[:300] or None)
        )


async def note_error(engine: AsyncEngine, creds: Credentials, error: str | None) -> None:
    """The token endpoint's last refusal, shown with the credentials (None clears it)."""
    sc = t.source_credentials
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(sc)
            .where(sc.c.source_id == creds.source_id, sc.c.generation == creds.generation)
            .values(last_error=error[:500] if error else None)
        )


class SourceTokenStore:
    """The TokenStore of source credentials: keys are ``source:<id>:<generation>``."""

    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    @staticmethod
    def _split(key: str) -> tuple[str, str]:
        _, source_id, generation = key.split(":", 2)
        return source_id, generation

    async def load(self, key: str) -> dict[str, Any] | None:
        source_id, generation = self._split(key)
        sc = t.source_credentials
        async with self._engine.connect() as conn:
            sealed = await conn.scalar(
                sa.select(sc.c.token_enc).where(sc.c.source_id == source_id, sc.c.generation == generation)
            )
        if not sealed:
            return None
        loaded: dict[str, Any] = json.loads(self._box.open(sealed))
        return loaded

    async def save(self, key: str, token: dict[str, Any]) -> None:
        source_id, generation = self._split(key)
        sc = t.source_credentials
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(sc)
                .where(sc.c.source_id == source_id, sc.c.generation == generation)  # never over newer credentials
                .values(
                    token_enc=self._box.seal(json.dumps(token)),
                    expires_at=token.get("expires_at"),
                    last_error=None,
                    updated_at=time.time(),
                )
            )


def _method(cfg: StorageSettings) -> ClientAuthMethod:
    return AUTH_METHOD if cfg.oauth_client_secret else "none"


def grant_for(provider: Provider, cfg: StorageSettings, creds: Credentials) -> Grant:
    """What the token cache asks the token endpoint for, for these credentials."""
    kind: Literal["client_credentials", "refresh_token"] = (
        "client_credentials" if creds.grant == "client_credentials" else "refresh_token"
    )
    return make_grant(provider, cfg, kind, store_key=creds.store_key)


def make_grant(
    provider: Provider,
    cfg: StorageSettings,
    kind: Literal["client_credentials", "refresh_token"],
    store_key: str | None = None,
    refresh_token: str | None = None,
) -> Grant:
    scope = provider.scope(cfg) if kind == "client_credentials" or provider.refresh_with_scope else None
    return Grant(
        kind,
        provider.token_url(cfg),
        cfg.oauth_client_id,
        cfg.oauth_client_secret or None,
        scope=scope,
        refresh_token=refresh_token,
        store_key=store_key,
        auth_method=_method(cfg),
    )


# --- the authorization-code flow ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentState:
    """What the ``state`` of a consent carries (sealed): the source, the PKCE verifier, who started it."""

    source_id: str
    verifier: str
    redirect_uri: str
    actor_kind: str
    actor_id: str
    actor_name: str
    expires_at: float


def seal_state(box: SecretBox, state: ConsentState) -> str:
    return box.derived(STATE_PURPOSE).seal_json(state.__dict__)


def open_state(box: SecretBox, sealed: str, now: float) -> ConsentState | None:
    """The state of a consent this hub started, unexpired; None otherwise."""
    try:
        data = box.derived(STATE_PURPOSE).open_json(sealed)
        state = ConsentState(**data)
    except Exception:  # not ours, tampered, or from an older key
        return None
    return state if state.expires_at > now else None


def authorization_url(provider: Provider, cfg: StorageSettings, box: SecretBox, state: ConsentState) -> str:
    """The provider's authorize URL for this source (PKCE S256, the state sealed)."""
    return str(
        prepare_grant_uri(
            provider.authorize_url(cfg),
            cfg.oauth_client_id,
            "code",
            redirect_uri=state.redirect_uri,
            scope=provider.scope(cfg),
            state=seal_state(box, state),
            code_challenge=create_s256_code_challenge(state.verifier),
            code_challenge_method="S256",
            **provider.authorize_extra,
        )
    )


def new_state(source_id: str, redirect_uri: str, actor: Any, now: float) -> ConsentState:
    return ConsentState(source_id, generate_token(64), redirect_uri, actor.kind, actor.id, actor.name, now + STATE_TTL)


@dataclass(frozen=True)
class Exchanged:
    token: Token
    account: str | None  # Dropbox names the account in its token answer (account_id)


async def exchange_code(
    http: Any,
    egress: EgressPolicy,
    provider: Provider,
    cfg: StorageSettings,
    code: str,
    state: ConsentState,
    now: float,
) -> Exchanged:
    """The callback's code → tokens (RFC 6749 §4.1.3 with the PKCE verifier, RFC 7636). TokenError if refused."""
    token_url = provider.token_url(cfg)
    body = prepare_token_request(
        "authorization_code", code=code, redirect_uri=state.redirect_uri, code_verifier=state.verifier
    )
    body, headers = client_authenticated(
        token_url,
        cfg.oauth_client_id,
        cfg.oauth_client_secret or None,
        body,
        _method(cfg),
    )
    status, raw = await post_token_request(http, egress, token_url, body, headers)
    token = parse_token_answer(status, raw, now, None)
    if not token.refresh_token:
        raise TokenError(
            "the provider gave no refresh token (Dropbox: token_access_type=offline; Google: access_type=offline; "
            "Microsoft: the offline_access scope)",
            "dead",
        )
    try:
        data = json.loads(raw)
    except ValueError:
        data = {}
    account = data.get("account_id") if isinstance(data, dict) else None
    return Exchanged(token, account[:300] if isinstance(account, str) and account else None)
