"""Everything that authenticates a request, built once per app from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from hub.auth.oidc import OidcProvider
from hub.auth.session import SessionCodec
from hub.config import Settings
from hub.crypto import SecretBox


@dataclass
class AuthService:
    settings: Settings
    sessions: SessionCodec
    oidc: OidcProvider | None

    def base_url(self, request: Request) -> str:
        return self.settings.public_url.rstrip("/") if self.settings.public_url else str(request.base_url).rstrip("/")

    def redirect_uri(self, request: Request) -> str:
        return self.base_url(request) + "/auth/callback"

    def secure_cookies(self, request: Request) -> bool:
        return self.base_url(request).startswith("https://")

    async def aclose(self) -> None:
        if self.oidc is not None:
            await self.oidc.aclose()


def build_auth(settings: Settings, box: SecretBox) -> AuthService:
    oidc = OidcProvider(settings) if settings.oidc_enabled else None
    return AuthService(settings, SessionCodec(box, settings.session_lifetime), oidc)


def auth_service(request: Request) -> AuthService:
    service: AuthService = request.app.state.auth
    return service
