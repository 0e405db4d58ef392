"""The admin page: one static HTML file that drives the management API with the operator's key."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from hub.auth.service import auth_service

router = APIRouter(tags=["admin"])
_PAGE = Path(__file__).resolve().parent.parent / "admin" / "index.html"


@router.get("/admin", response_class=HTMLResponse, summary="Admin page: events, dead letters, breakers")
async def admin_page(request: Request) -> HTMLResponse:
    page = _PAGE.read_text(encoding="utf-8")
    if auth_service(request).oidc is not None:
        page = page.replace("<!--SSO-->", '<a href="/auth/login?next=/admin" style="color:#fff">Sign in with SSO</a>')
    return HTMLResponse(page)
