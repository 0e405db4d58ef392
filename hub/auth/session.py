"""The console's session: a cookie sealed (encrypted and signed) with a key derived from HUB_SECRET_KEY.

Two cookies: the sign-in in progress (state, nonce, PKCE verifier; ten minutes) and the session itself
(who, scope, until when). Each says what it is, so one can never be passed off as the other.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import Request, Response

from hub.auth.oidc import SignIn
from hub.auth.principal import Principal
from hub.config import ConfigError
from hub.crypto import SecretBox

SESSION_COOKIE = "hub_session"
SIGN_IN_COOKIE = "hub_sign_in"
SIGN_IN_LIFETIME = 600.0
CSRF_HEADER = "X-Hub-Console"  # unsafe methods authenticated by the cookie must carry it (a form cannot)


class SessionCodec:
    def __init__(self, box: SecretBox, lifetime: float) -> None:
        self.box = box.derived("hub console session cookie")
        self.lifetime = lifetime

    def _seal(self, kind: str, body: dict[str, Any], lifetime: float) -> str:
        return self.box.seal(json.dumps({"typ": kind, "exp": time.time() + lifetime, **body}))

    def _open(self, kind: str, token: str | None) -> dict[str, Any] | None:
        if not token:
            return None
        try:
            body = json.loads(self.box.open(token))
        except (ConfigError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("typ") != kind or not body.get("exp", 0) > time.time():
            return None
        return body

    def session(self, who: Principal) -> str:
        return self._seal("session", {"sub": who.id, "name": who.name, "scope": who.scope}, self.lifetime)

    def is_session(self, token: str | None) -> bool:
        """Whether a cookie value is an open console session (the API guard asks before any body is read)."""
        return self._open("session", token) is not None

    def principal(self, request: Request) -> Principal | None:
        body = self._open("session", request.cookies.get(SESSION_COOKIE))
        if body is None:
            return None
        return Principal("oidc", str(body["sub"]), str(body["name"]), str(body["scope"]))

    def sign_in(self, flow: SignIn) -> str:
        fields = {"state": flow.state, "nonce": flow.nonce, "verifier": flow.code_verifier, "next": flow.next_path}
        return self._seal("sign_in", fields, SIGN_IN_LIFETIME)

    def pending_sign_in(self, request: Request) -> SignIn | None:
        body = self._open("sign_in", request.cookies.get(SIGN_IN_COOKIE))
        if body is None:
            return None
        return SignIn(state=body["state"], nonce=body["nonce"], code_verifier=body["verifier"], next_path=body["next"])


def set_cookie(response: Response, name: str, value: str, max_age: float, secure: bool) -> None:
    response.set_cookie(name, value, max_age=int(max_age), httponly=True, samesite="lax", secure=secure, path="/")


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path="/")
