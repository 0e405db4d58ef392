"""Sign-in with the company's identity provider (OpenID Connect) for the console, and who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from hub.api.common import ReadKey
from hub.auth.service import AuthService, auth_service
from hub.auth.session import SESSION_COOKIE, SIGN_IN_COOKIE, SIGN_IN_LIFETIME, clear_cookie, set_cookie
from hub.errors import HubError

router = APIRouter(tags=["auth"])
AuthDep = Annotated[AuthService, Depends(auth_service)]


class WhoAmI(BaseModel):
    kind: str = Field(description="api_key | oidc")
    id: str = Field(description="The API key's id, or the OIDC subject.")
    name: str = Field(description="The API key's name, or the user's e-mail.")
    scope: str = Field(description="admin | read")


def _local_path(next_path: str) -> str:
    """Only a path of this site: never an open redirect."""
    if not next_path.startswith("/") or next_path.startswith("//") or "\\" in next_path:
        return "/admin"
    return next_path


@router.get(
    "/auth/login",
    summary="Sign in with the identity provider (redirects there; back at /auth/callback)",
    status_code=302,
    response_class=RedirectResponse,
    responses={404: {"description": "oidc_not_configured"}, 503: {"description": "oidc_unavailable"}},
)
async def login(
    request: Request, auth: AuthDep, next: str = Query("/admin", description="Where to go after")
) -> Response:
    if auth.oidc is None:
        raise HubError(404, "oidc_not_configured", "single sign-on is not configured (HUB_OIDC_ISSUER)")
    url, flow = await auth.oidc.begin_sign_in(auth.redirect_uri(request), _local_path(next))
    response = RedirectResponse(url, status_code=302)
    set_cookie(response, SIGN_IN_COOKIE, auth.sessions.sign_in(flow), SIGN_IN_LIFETIME, auth.secure_cookies(request))
    return response


@router.get(
    "/auth/callback",
    summary="Where the identity provider sends the browser back: starts the console session",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        400: {"description": "sign_in_expired"},
        401: {"description": "unauthorized: the sign-in failed"},
        403: {"description": "forbidden: in no group mapped to a scope"},
        404: {"description": "oidc_not_configured"},
        503: {"description": "oidc_unavailable"},
    },
)
async def callback(request: Request, auth: AuthDep) -> Response:
    if auth.oidc is None:
        raise HubError(404, "oidc_not_configured", "single sign-on is not configured (HUB_OIDC_ISSUER)")
    flow = auth.sessions.pending_sign_in(request)
    if flow is None:
        raise HubError(400, "sign_in_expired", "no sign-in in progress (or it took too long): start at /auth/login")
    who = await auth.oidc.finish_sign_in(str(request.url), auth.redirect_uri(request), flow)
    response = RedirectResponse(flow.next_path, status_code=302)
    clear_cookie(response, SIGN_IN_COOKIE)
    set_cookie(
        response, SESSION_COOKIE, auth.sessions.session(who), auth.sessions.lifetime, auth.secure_cookies(request)
    )
    return response


@router.post("/auth/logout", status_code=204, summary="End the console session (clears its cookie)")
async def logout() -> Response:
    response = Response(status_code=204)
    clear_cookie(response, SESSION_COOKIE)
    return response


@router.get(
    "/auth/me",
    response_model=WhoAmI,
    summary="Who the credentials of this request belong to",
    responses={401: {"description": "No credentials, or unknown ones"}, 503: {"description": "oidc_unavailable"}},
)
async def whoami(who: ReadKey) -> WhoAmI:
    return WhoAmI(kind=who.kind, id=who.id, name=who.name, scope=who.scope)
