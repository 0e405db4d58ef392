"""The API docs UIs (Swagger UI at /docs, ReDoc at /redoc) served from assets that ship with hub.

FastAPI's own pages load their scripts, styles, favicon and fonts from public CDNs: blank pages on a host
without internet access. The assets come from the ``fastapi-offline`` package (Swagger UI and ReDoc
bundles, kept current by its releases); nothing here reaches another host.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_DIR = Path(str(files("fastapi_offline") / "static"))
SWAGGER_UI_PARAMETERS = {
    "validatorUrl": None,  # Swagger UI would ask validator.swagger.io for a badge
    "persistAuthorization": True,
    "displayRequestDuration": True,
}

# Only this origin: ReDoc's side menu would fetch its vendor's logo from a CDN (it hides it when that fails).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'"
)

router = APIRouter(include_in_schema=False)


def _same_origin_only(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return page


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API (Swagger UI)",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        oauth2_redirect_url=request.app.swagger_ui_oauth2_redirect_url,
        swagger_ui_parameters={**(request.app.swagger_ui_parameters or {}), **SWAGGER_UI_PARAMETERS},
    )
    return _same_origin_only(page)


@router.get("/docs/oauth2-redirect")
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    page = get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API (ReDoc)",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,
    )
    return _same_origin_only(page)


@router.get("/")
async def home() -> RedirectResponse:
    """The root leads to the console."""
    return RedirectResponse("/admin", status_code=307)


def mount_docs(app: FastAPI) -> None:
    """Serve the docs pages and their assets (create the app with ``docs_url=None, redoc_url=None``)."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    app.include_router(router)
