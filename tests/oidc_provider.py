"""A local OpenID Connect provider standing in for the company's IdP: discovery, JWKS, authorize, token.

Real HTTP on a free port of 127.0.0.1; tokens signed with RSA keys generated here (joserfc). ``authorize``
signs in ``user`` at once (no login form) and binds the code to its PKCE challenge, which ``token`` checks.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.receiver import free_port

CLIENT_ID = "hub-console"
CLIENT_SECRET = "client-secret-0123456789"
API_AUDIENCE = "hub-api"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    claims: dict[str, Any]


@dataclass
class StandInProvider:
    port: int = 0
    keys: list[RSAKey] = field(default_factory=lambda: [new_key("key-1")])
    user: dict[str, Any] = field(
        default_factory=lambda: {"sub": "u-123", "email": "ada@example.com", "groups": ["hub-admins"]}
    )
    grants: dict[str, Grant] = field(default_factory=dict)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    jwks_fetches: int = 0
    deny_with: str | None = None  # authorize answers this OAuth error instead of a code
    issuer_suffix: str = ""  # "/": an issuer that ends with a slash, as some providers' do

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.base + self.issuer_suffix

    def sign(self, claims: dict[str, Any], key: RSAKey | None = None, alg: str = "RS256") -> str:
        key = key or self.keys[0]
        return jwt.encode({"alg": alg, "kid": key.kid}, claims, key)

    def token(self, audience: str = API_AUDIENCE, lifetime: int = 300, **claims: Any) -> str:
        """An access token as the provider would issue it to a client of the API."""
        now = int(time.time())
        body = {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + lifetime, **self.user, **claims}
        return self.sign({k: v for k, v in body.items() if v is not None})

    async def discovery(self, _: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base}/authorize",
                "token_endpoint": f"{self.base}/token",
                "jwks_uri": f"{self.base}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def jwks(self, _: Request) -> Response:
        self.jwks_fetches += 1
        return JSONResponse(KeySet(list(self.keys)).as_dict(private=False))

    async def authorize(self, request: Request) -> Response:
        q = dict(request.query_params)
        self.authorize_requests.append(q)
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return JSONResponse({"error": "invalid_request"}, status_code=400)
        if self.deny_with:
            answer = urlencode({"error": self.deny_with, "state": q["state"]})
            return RedirectResponse(f"{q['redirect_uri']}?{answer}", 302)
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(q["client_id"], q["redirect_uri"], q["code_challenge"], q["nonce"], dict(self.user))
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token_endpoint(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        grant = self.grants.pop(str(form.get("code")), None)
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("authorization") != f"Basic {basic}":
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        digest = hashlib.sha256(str(form.get("code_verifier", "")).encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return JSONResponse({"error": "invalid_grant", "error_description": "PKCE verification failed"}, 400)
        now = int(time.time())
        id_token = self.sign(
            {"iss": self.issuer, "aud": CLIENT_ID, "iat": now, "exp": now + 300, "nonce": grant.nonce, **grant.claims}
        )
        return JSONResponse(
            {"access_token": self.token(), "id_token": id_token, "token_type": "Bearer", "expires_in": 300}
        )

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/jwks", self.jwks),
                Route("/authorize", self.authorize),
                Route("/token", self.token_endpoint, methods=["POST"]),
            ]
        )


@contextlib.asynccontextmanager
async def serve_provider(provider: StandInProvider) -> AsyncIterator[StandInProvider]:
    import asyncio

    provider.port = free_port()
    server = uvicorn.Server(uvicorn.Config(provider.app(), host="127.0.0.1", port=provider.port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield provider
    finally:
        server.should_exit = True
        await task
