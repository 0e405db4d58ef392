"""OpenID Connect: discovery, authorization code + PKCE for the console, JWT bearer tokens for the API.

The OAuth messages are built and parsed by authlib (authorization URL, PKCE S256 challenge, token request,
callback parsing); tokens are verified with joserfc (authlib's JOSE library) against the provider's JWKS:
signature (asymmetric algorithms only), issuer, audience, expiry, and the nonce of a sign-in. authlib's
ready-made httpx client is not used: it is deprecated there in favour of httpx2, and hub talks httpx.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.parameters import parse_authorization_code_response, prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from hub.auth.principal import Principal
from hub.config import Settings
from hub.errors import HubError

log = logging.getLogger("hub.auth")

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"]
METADATA_TTL = 3600.0
LEEWAY = 60  # seconds of clock skew tolerated on exp / nbf / iat


def unauthorized(message: str) -> HubError:
    return HubError(401, "unauthorized", message)


def unavailable(message: str) -> HubError:
    return HubError(503, "oidc_unavailable", message)


@dataclass(frozen=True)
class SignIn:
    """What a sign-in must remember between the redirect to the provider and the callback."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str


def looks_like_jwt(value: str) -> bool:
    parts = value.split(".")
    if len(parts) != 3 or not all(parts):
        return False
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and "alg" in header


def _header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    loaded = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    if not isinstance(loaded, dict):
        raise ValueError("a JWT header is a JSON object")
    return loaded


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by name, or by dotted path into nested objects (``realm_access.roles``)."""
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


class OidcProvider:
    """One identity provider, as configured by the HUB_OIDC_* settings."""

    jwks_min_refresh = 10.0  # seconds between two JWKS fetches caused by an unknown key id

    def __init__(self, settings: Settings, http: httpx.AsyncClient | None = None) -> None:
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.client_secret = settings.oidc_client_secret
        self.audience = settings.oidc_audience or settings.oidc_client_id
        self.scopes = settings.oidc_scopes
        self.groups_claim = settings.oidc_groups_claim
        self.admin_groups = settings.names(settings.oidc_admin_groups)
        self.read_groups = settings.names(settings.oidc_read_groups)
        # the identity provider is usually internal: not through the egress policy of deliveries
        self.http = http or httpx.AsyncClient(timeout=10, follow_redirects=False)
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            resp = await self.http.get(url, headers={"Accept": "application/json"})
            resp.raise_for_status()
            data = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("identity provider unreachable", extra={"what": what, "cause": type(exc).__name__})
            raise unavailable(f"the identity provider's {what} could not be read ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise unavailable(f"the identity provider's {what} is not a JSON object")
        return data

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for an hour)."""
        if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL:
            data = await self._get_json(f"{self.issuer}/.well-known/openid-configuration", "discovery document")
            named = data.get("issuer")
            if not isinstance(named, str) or named.rstrip("/") != self.issuer:  # OIDC Discovery 1.0, 4.3
                raise unavailable("the discovery document names another issuer than HUB_OIDC_ISSUER")
            for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(data.get(needed), str):
                    raise unavailable(f"the discovery document has no {needed}")
            self._metadata, self._metadata_at = data, time.monotonic()
        return self._metadata

    async def _key_set(self, kid: str | None) -> KeySet:
        """The provider's signing keys; fetched again (not too often) when a token names an unknown key."""
        known = self._keys is not None and (kid is None or any(k.kid == kid for k in self._keys))
        stale = time.monotonic() - self._keys_at > self.jwks_min_refresh
        if self._keys is None or (not known and stale):
            data = await self._get_json((await self.metadata())["jwks_uri"], "JWKS")
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise unavailable("the identity provider's JWKS holds no usable key") from None
            self._keys_at = time.monotonic()
        return self._keys

    async def verify(self, token: str, audience: str, nonce: str | None = None) -> dict[str, Any]:
        """The claims of a JWT signed by the provider, checked: signature, issuer, audience, expiry."""
        try:
            kid = _header(token).get("kid")
        except (ValueError, UnicodeDecodeError):
            raise unauthorized("the token is not a JWT") from None
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        options: dict[str, Any] = {
            "iss": {"essential": True, "value": (await self.metadata())["issuer"]},  # exactly, trailing / or not
            "aud": {"essential": True, "value": audience},
            "exp": {"essential": True},
            "sub": {"essential": True},
        }
        if nonce is not None:
            options["nonce"] = {"essential": True, "value": nonce}
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            jwt.JWTClaimsRegistry(leeway=LEEWAY, **options).validate(decoded.claims)
        except ExpiredTokenError:
            raise unauthorized("the token has expired") from None
        except JoseError as exc:
            raise unauthorized(f"the token is not accepted: {exc.error}") from None
        except (ValueError, TypeError):
            raise unauthorized("the token is not accepted") from None
        return dict(decoded.claims)

    def scope_for(self, claims: Mapping[str, Any]) -> str | None:
        """admin, read, or None: the configured groups (or roles) found in the groups claim."""
        value = claim_at(claims, self.groups_claim)
        if isinstance(value, str):
            groups = {g for g in value.replace(",", " ").split() if g}
        elif isinstance(value, list):
            groups = {str(g) for g in value}
        else:
            groups = set()
        if groups & self.admin_groups:
            return "admin"
        if groups & self.read_groups:
            return "read"
        return None

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        scope = self.scope_for(claims)
        if scope is None:
            raise HubError(
                403, "forbidden", f"your identity is in no group that hub maps to a scope (claim {self.groups_claim!r})"
            )
        sub = str(claims["sub"])
        name = claims.get("email") or claims.get("preferred_username") or claims.get("name") or sub
        return Principal("oidc", sub, str(name), scope)

    async def bearer_principal(self, token: str) -> Principal:
        """The caller of an API request that carries a JWT access token from the provider."""
        return self.principal(await self.verify(token, self.audience))

    # -- console sign-in: authorization code + PKCE -------------------------------------------------

    async def begin_sign_in(self, redirect_uri: str, next_path: str) -> tuple[str, SignIn]:
        """The provider's authorization URL to send the browser to, and what the callback must check."""
        metadata = await self.metadata()
        flow = SignIn(
            state=generate_token(32), nonce=generate_token(32), code_verifier=generate_token(64), next_path=next_path
        )
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            self.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.scopes,
            state=flow.state,
            nonce=flow.nonce,
            code_challenge=create_s256_code_challenge(flow.code_verifier),
            code_challenge_method="S256",
        )
        return url, flow

    async def finish_sign_in(self, callback_url: str, redirect_uri: str, flow: SignIn) -> Principal:
        """Check the callback (state, error), exchange the code with its verifier, verify the ID token."""
        answered = dict(parse_qsl(urlsplit(callback_url).query))
        if "error" in answered:
            said = answered.get("error_description") or answered["error"]
            raise unauthorized(f"the identity provider refused the sign-in: {said[:200]}")
        try:
            params = parse_authorization_code_response(callback_url, state=flow.state)
        except OAuth2Error as exc:
            raise unauthorized(f"the sign-in did not complete: {exc.error}") from None
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": redirect_uri,
            "code_verifier": flow.code_verifier,
            "client_id": self.client_id,
        }
        # client_secret_basic for a confidential client; a public one proves itself with the PKCE verifier
        auth: httpx.Auth | httpx._client.UseClientDefault = httpx.USE_CLIENT_DEFAULT  # the client has no auth
        if self.client_secret:
            auth = httpx.BasicAuth(self.client_id, self.client_secret)
        try:
            resp = await self.http.post(
                metadata["token_endpoint"], data=form, auth=auth, headers={"Accept": "application/json"}
            )
            token = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise unavailable(f"the identity provider's token endpoint failed ({type(exc).__name__})") from None
        if resp.status_code != 200 or not isinstance(token, dict) or not isinstance(token.get("id_token"), str):
            error = token.get("error", f"HTTP {resp.status_code}") if isinstance(token, dict) else resp.status_code
            raise unauthorized(f"the identity provider refused the code: {error}")
        return self.principal(await self.verify(token["id_token"], self.client_id, nonce=flow.nonce))
