"""The console at /admin: one HTML page and its ES modules (plain JavaScript, no build step, no library),
all served by hub itself: it works on a host without internet access, and its Content-Security-Policy
lets it load and call nothing but this origin."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from hub.auth.service import auth_service
from hub.errors import HubError

router = APIRouter(tags=["admin"])
_DIR = Path(__file__).resolve().parent.parent / "admin"
_PAGE = _DIR / "index.html"
_ASSETS = _DIR / "assets"
_ASSET_NAME = re.compile(r"^[a-z0-9-]+\.(js|css)$")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",  # revalidated: an upgraded hub serves its new console at once
}


@router.get(
    "/admin",
    response_class=HTMLResponse,
    summary="The console: overview, events, dead letters, sources, targets, routes, audit",
)
async def admin_page(request: Request) -> HTMLResponse:
    """The operator's web page. It calls this API with an API key typed in (kept for the browser tab) or,
    with single sign-on configured, the session cookie set by `/auth/login`."""
    page = _PAGE.read_text(encoding="utf-8")
    if auth_service(request).oidc is not None:
        page = page.replace("<!--SSO-->", '<a class="sso" href="/auth/login?next=/admin">Sign in with SSO</a>')
    return HTMLResponse(page, headers=_HEADERS)


@router.get("/admin/assets/{name}", include_in_schema=False)
async def admin_asset(name: str) -> FileResponse:
    match = _ASSET_NAME.match(name)
    path = _ASSETS / name
    if match is None or not path.is_file():
        raise HubError(404, "not_found", f"no console asset {name!r}")
    return FileResponse(path, media_type=_TYPES[match.group(1)], headers=_HEADERS)
