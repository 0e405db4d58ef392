"""The FastAPI application: management API, ingest endpoint, health, and the embedded worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

import httpx
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from hub import __version__
from hub.api import (
    admin,
    audit,
    auth,
    catalogue,
    deliveries,
    delivery_request,
    dry_run,
    events,
    health,
    keys,
    mappings,
    operations,
    people,
    preview,
    routes,
    sources,
    stats,
    targets,
)
from hub.api.docs import mount_docs
from hub.api.error_docs import document_errors
from hub.api.guard import ApiGuard
from hub.api.keys import bootstrap_admin_key, count_keys
from hub.api.methods import MethodGuard, allowed_methods
from hub.auth.service import build_auth
from hub.config import Settings, get_settings
from hub.db.migrate import upgrade
from hub.delivery.bulk import unfinished_jobs
from hub.delivery.embedded import EmbeddedWorker
from hub.delivery.jobs import local_runner
from hub.delivery.process import DeliveryProcess
from hub.errors import HubError
from hub.ingest import router as ingest
from hub.ingest.fastpath import IngestFastPath
from hub.runtime import Runtime, build_runtime, check_secret_key
from hub.storage import api as storage

log = logging.getLogger("hub.app")

DESCRIPTION = """
hub receives webhooks from business tools, verifies and stores them, maps them into posts and delivers
them to enterprise social networks with retries.

Management calls need `Authorization: Bearer <api key>` (or, with single sign-on configured, an access
token from the identity provider); `read` keys may only read. Every change is recorded at `/api/v1/audit`.
Errors answer `{"error": {"code": "…", "message": "…"}}` with a stable code.
"""


def _error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HubError)
    async def hub_error(_: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return JSONResponse(
                HubError(400, "malformed_body", "the body is not valid JSON", errors=errors).body(), status_code=400
            )
        return JSONResponse(
            HubError(422, "invalid_request", "the request does not validate", errors=errors).body(), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {400: "malformed_body", 404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        body = HubError(exc.status_code, code, str(exc.detail)).body()
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # Starlette lists only the first matching route's methods
            headers["Allow"] = ", ".join(allowed_methods(request.app.router.routes, request.scope) or [])
        return JSONResponse(body, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"path": request.url.path})
        return JSONResponse(
            HubError(500, "internal_error", "internal error; see the server log").body(), status_code=500
        )


NO_KEY_HINT = (
    "no API key exists yet, so nobody can use the API or the console: create an admin key with "
    "`hub keys create --name admin --scope admin`, or start with HUB_BOOTSTRAP_ADMIN_KEY set"
)


class Stoppable(Protocol):
    async def stop(self) -> None: ...


async def start_runtime(rt: Runtime, delivery_process: bool = False) -> Stoppable | None:
    """Migrate, bootstrap the admin key, and wire the dispatcher for this process: the embedded worker,
    in this process or (``delivery_process``, `hub serve`) in a second one."""
    settings = rt.settings
    if settings.auto_migrate:
        await upgrade(rt.engine)
    await check_secret_key(rt)
    if settings.bootstrap_admin_key and await bootstrap_admin_key(rt.engine, settings.bootstrap_admin_key):
        log.info("bootstrap admin key created")
    if not await count_keys(rt.engine):
        log.warning(
            NO_KEY_HINT + (" (or sign in through single sign-on at /auth/login)" if settings.oidc_enabled else "")
        )
    if settings.scaled:
        from hub.scaled.dispatch import attach_arq

        await attach_arq(rt)
        return None
    rt.background = local_runner(rt)
    if settings.embedded_worker:
        worker: Stoppable | None = await _delivery_process(rt) if delivery_process else None
        if worker is None:
            worker = embedded = EmbeddedWorker(rt)
            await embedded.recover()
            rt.dispatcher = embedded
            embedded.start()
        for job_id in await unfinished_jobs(rt.engine):  # a bulk retry cut short by a stop
            await rt.background("bulk_retry", job_id)
        return worker
    return None


async def _delivery_process(rt: Runtime) -> DeliveryProcess | None:
    """The delivery process started, or None when it cannot start here (deliveries then run in this
    process, as with HUB_DELIVERY_PROCESS=false)."""
    process = DeliveryProcess(rt)
    try:
        await process.start()
    except Exception as exc:
        log.warning(
            "the delivery process did not start; delivering in the API process",
            extra={"cause": f"{type(exc).__name__}: {exc}"},
        )
        return None
    rt.dispatcher = process
    return process


def create_app(
    settings: Settings | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    delivery_process: bool = False,
) -> FastAPI:
    """The app; ``delivery_process``: deliveries in a second process (`hub serve`, hub/delivery/process.py)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = build_runtime(settings, transport)
        app.state.runtime = rt
        app.state.auth = build_auth(settings, rt.box)
        rt.closers.append(app.state.auth.aclose)
        worker = await start_runtime(rt, delivery_process)
        rt.ingest.start()
        try:
            yield
        finally:
            await rt.ingest.stop()
            if worker:
                await worker.stop()
            for closer in rt.closers:
                await closer()
            await rt.close()

    app = FastAPI(
        title="hub", version=__version__, description=DESCRIPTION, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.add_middleware(ApiGuard)  # /api/* needs a known credential before any body is read; bodies capped
    _error_handlers(app)
    app.add_middleware(MethodGuard)
    routers = [
        m.router
        for m in (
            ingest,
            sources,
            targets,
            routes,
            dry_run,
            events,
            deliveries,
            delivery_request,
            operations,
            stats,
            preview,
            mappings,
            people,
            catalogue,
            keys,
            audit,
            auth,
            health,
            admin,
            storage,  # storage sources: credentials, fetches, subscriptions (issue 8)
        )
    ]
    for router in routers:
        app.include_router(router)
    document_errors(app, routers)
    mount_docs(app)
    return app


def create_asgi_app(settings: Settings | None = None, delivery_process: bool = False) -> IngestFastPath:
    """What `hub serve` runs: the app behind the ingest fast path (POST /hooks/… never enters FastAPI)."""
    return IngestFastPath(create_app(settings, delivery_process=delivery_process))
