"""Outbound OAuth2 through authlib, as an ``httpx.Auth``: client credentials (the generic webhook) and
refresh-token renewal of a user's delegated token (Viva Engage).

Tokens are cached per credential (a hash of what identifies it), fetched under a lock so concurrent
sends share one request, refreshed before they expire and once more when the target answers 401.
When a store is given they are kept encrypted there (a rotated refresh token survives a restart).
Tokens are never logged; what a send returns is scrubbed of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr

from hub.targets.base import network_error
from hub.targets.egress import EgressBlocked, EgressPolicy, egress_refusal

with warnings.catch_warnings():  # authlib warns that httpx2 is not installed; httpx is what hub uses
    warnings.simplefilter("ignore")
    from authlib.integrations.httpx_client import OAuth2Auth

LEEWAY = 60.0  # seconds before expiry when a token is renewed
MAX_TOKEN_ANSWER = 64 * 1024


class OAuth2ClientCredentials(BaseModel):
    """OAuth2 client credentials (RFC 6749 §4.4), the client authenticated with HTTP Basic (§2.3.1)."""

    model_config = ConfigDict(extra="forbid")
    token_url: AnyHttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    scope: str | None = None


class OAuth2Refresh(BaseModel):
    """Renewal of a delegated access token with a refresh token (RFC 6749 §6)."""

    model_config = ConfigDict(extra="forbid")
    token_url: AnyHttpUrl
    client_id: str = Field(min_length=1)
    client_secret: SecretStr | None = None  # a public client (no secret) sends its client_id in the body
    refresh_token: SecretStr
    scope: str | None = None  # e.g. Entra's "https://www.yammer.com/.default offline_access"


@dataclass(frozen=True)
class Token:
    access_token: str
    expires_at: float | None = None  # unknown: used until the target refuses it
    refresh_token: str | None = None
    leeway: float = LEEWAY

    def fresh(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at - self.leeway

    def as_dict(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "expires_at": self.expires_at, "refresh_token": self.refresh_token}


class TokenError(Exception):
    """The token endpoint could not give a token: retried (unreachable, 5xx) or dead (credentials refused)."""

    def __init__(self, message: str, outcome: Literal["retry", "dead"] = "retry") -> None:
        super().__init__(message)
        self.outcome = outcome


class TokenStore(Protocol):
    """Tokens at rest, encrypted by the store."""

    async def load(self, key: str) -> dict[str, Any] | None: ...

    async def save(self, key: str, token: dict[str, Any]) -> None: ...


ClientAuthMethod = Literal["client_secret_basic", "client_secret_post", "none"]


@dataclass(frozen=True)
class Grant:
    """What to ask the token endpoint for, and the token to start with (a configured delegated token).

    ``store_key`` names the token in the cache and its store instead of a hash of the grant (a source's
    credentials, whose refresh token rotates); ``auth_method`` how the client authenticates (default: HTTP
    Basic with a secret, the client id in the body without)."""

    kind: Literal["client_credentials", "refresh_token"]
    token_url: str
    client_id: str
    client_secret: str | None
    scope: str | None = None
    refresh_token: str | None = None
    initial: str | None = None
    store_key: str | None = None
    auth_method: ClientAuthMethod | None = None

    def key(self) -> str:
        if self.store_key:
            return self.store_key
        parts = (self.kind, self.token_url, self.client_id, self.client_secret, self.scope, self.refresh_token)
        return hashlib.sha256("\0".join(p or "" for p in (*parts, self.initial)).encode()).hexdigest()

    def request(self, current: Token | None) -> tuple[str, dict[str, str]]:
        """The token request's form body and headers, prepared by authlib."""
        if self.kind == "client_credentials":
            body = prepare_token_request("client_credentials", scope=self.scope)
        else:
            latest = (current.refresh_token if current else None) or self.refresh_token
            if not latest:
                raise TokenError("no refresh token to renew the access token with", "dead")
            body = prepare_token_request("refresh_token", refresh_token=latest, scope=self.scope)
        return client_authenticated(self.token_url, self.client_id, self.client_secret, body, self.auth_method)


def client_authenticated(
    token_url: str, client_id: str, client_secret: str | None, body: str, method: ClientAuthMethod | None = None
) -> tuple[str, dict[str, str]]:
    """A token request's form body and headers with the client's authentication (RFC 6749 §2.3), by authlib."""
    chosen = method or ("client_secret_basic" if client_secret else "none")
    _, headers, body = ClientAuth(client_id, client_secret, chosen).prepare("POST", token_url, {}, body)
    return body, dict(headers)


def client_credentials(cfg: OAuth2ClientCredentials) -> Grant:
    secret = cfg.client_secret.get_secret_value()
    return Grant("client_credentials", str(cfg.token_url), cfg.client_id, secret, cfg.scope)


def refresh(cfg: OAuth2Refresh, access_token: str) -> Grant:
    secret = cfg.client_secret.get_secret_value() if cfg.client_secret else None
    refresh_token = cfg.refresh_token.get_secret_value()
    return Grant("refresh_token", str(cfg.token_url), cfg.client_id, secret, cfg.scope, refresh_token, access_token)


class TokenCache:
    """Tokens per credential for one process, backed by an optional encrypted store."""

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        store: TokenStore | None = None,
        egress: EgressPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._store = store
        self._egress = egress or EgressPolicy()
        self._clock = clock
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.fetches = 0  # token requests made: what the tests count

    async def current(self, grant: Grant) -> Token:
        key = grant.key()
        token = self._tokens.get(key)
        if token is not None and token.fresh(self._clock()):
            return token
        async with self._locks.setdefault(key, asyncio.Lock()):
            token = self._tokens.get(key) or await self._load(key) or _initial(grant)
            if token is None or not token.fresh(self._clock()):
                token = await self._fetch(grant, key, token)
            self._tokens[key] = token
            return token

    async def renew(self, grant: Grant, refused: Token) -> bool:
        """The target refused ``refused``: fetch a new token, unless another send did meanwhile."""
        key = grant.key()
        async with self._locks.setdefault(key, asyncio.Lock()):
            token = self._tokens.get(key)
            if token is not None and token.access_token != refused.access_token:
                return True
            self._tokens[key] = await self._fetch(grant, key, token or refused)
            return True

    async def _load(self, key: str) -> Token | None:
        stored = await self._store.load(key) if self._store else None
        return Token(stored["access_token"], stored.get("expires_at"), stored.get("refresh_token")) if stored else None

    def forget(self, grant: Grant) -> None:
        """Drop the process's copy of a grant's token (its credentials were replaced or removed)."""
        self._tokens.pop(grant.key(), None)

    async def _fetch(self, grant: Grant, key: str, current: Token | None) -> Token:
        if self._client is None:
            raise TokenError("no HTTP client to reach the token endpoint")
        body, headers = grant.request(current)
        self.fetches += 1
        token = await token_request(self._client, self._egress, grant.token_url, body, headers, self._clock(), current)
        if self._store is not None:
            await self._store.save(key, token.as_dict())
        return token


async def token_request(
    client: httpx.AsyncClient,
    egress: EgressPolicy,
    token_url: str,
    body: str,
    headers: dict[str, str],
    now: float,
    current: Token | None = None,
) -> Token:
    """POST a token request (form body and client authentication prepared) and read the answer: a Token, or a
    TokenError saying whether to retry. Never logs nor returns what it sent."""
    status, raw = await post_token_request(client, egress, token_url, body, headers)
    return parse_token_answer(status, raw, now, current)


async def post_token_request(
    client: httpx.AsyncClient, egress: EgressPolicy, token_url: str, body: str, headers: dict[str, str]
) -> tuple[int, bytes]:
    """The token endpoint's status and answer (capped); TokenError when it cannot be reached."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json", **headers}
    try:
        egress.check_url(token_url)
        request = client.build_request("POST", token_url, content=body, headers=headers)
        resp = await client.send(request, stream=True)
        try:
            raw = await _read(resp)
        finally:
            await resp.aclose()
    except EgressBlocked as exc:
        raise TokenError(f"token endpoint: {exc}", "dead") from None
    except TokenError:
        raise
    except Exception as exc:
        if blocked := egress_refusal(exc):
            raise TokenError(f"token endpoint: {blocked}", "dead") from None
        raise TokenError(f"token endpoint unreachable: {network_error(exc)}") from None
    return resp.status_code, raw


def _initial(grant: Grant) -> Token | None:
    return Token(grant.initial) if grant.initial else None


async def _read(resp: httpx.Response) -> bytes:
    out = bytearray()
    async for chunk in resp.aiter_bytes():
        out += chunk
        if len(out) > MAX_TOKEN_ANSWER:
            raise TokenError("token endpoint: the answer is too large")
    return bytes(out)


def parse_token_answer(status: int, raw: bytes, now: float, current: Token | None) -> Token:
    """A token answer (RFC 6749 §5.1) or an error answer (§5.2)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        data = {}
    if 200 <= status < 300 and isinstance(data.get("access_token"), str) and data["access_token"]:
        expires_in = data.get("expires_in")
        seconds = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else None
        rotated = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None
        return Token(
            data["access_token"],
            now + seconds if seconds else None,
            rotated or (current.refresh_token if current else None),
            min(LEEWAY, seconds / 2) if seconds else LEEWAY,
        )
    code = str(data.get("error") or f"HTTP {status}")[:100]
    if status in (408, 429) or status >= 500:
        raise TokenError(f"token endpoint answered {code}")
    raise TokenError(f"the token endpoint refused the credentials: {code}", "dead")


class RenewableAuth(httpx.Auth):
    """An auth whose token can be renewed once when the target answers 401."""

    async def renew(self) -> bool:
        raise NotImplementedError

    def secrets(self) -> list[str]:
        """The tokens this auth sent: scrubbed from what hub keeps of the answer."""
        return []


class OAuth2Bearer(RenewableAuth):
    """``Authorization: Bearer`` with a token from the cache, signed by authlib's httpx ``OAuth2Auth``."""

    requires_request_body = True

    def __init__(self, grant: Grant, cache: TokenCache | None) -> None:
        self.grant = grant
        self._cache = cache
        self._used: Token | None = None

    def describe(self) -> str:
        what = "client credentials" if self.grant.kind == "client_credentials" else "refreshed delegated token"
        return f"OAuth2 bearer ({what}; token endpoint {httpx.URL(self.grant.token_url).host})"

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("OAuth2Bearer needs an async client")

    async def async_auth_flow(self, request: httpx.Request) -> Any:
        if self._cache is None:
            raise TokenError("no token cache to sign the request with")
        self._used = await self._cache.current(self.grant)
        signer = OAuth2Auth({"access_token": self._used.access_token, "token_type": "Bearer"})
        yield next(signer.auth_flow(request))

    async def renew(self) -> bool:
        return self._cache is not None and self._used is not None and await self._cache.renew(self.grant, self._used)

    def secrets(self) -> list[str]:
        used = self._used
        return [s for s in (used.access_token, used.refresh_token) if s] if used else []
