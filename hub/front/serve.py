"""`hub serve`: the app under uvicorn, with hub's protocol (``protocol.py``) in front."""

from __future__ import annotations

from typing import Any

import uvicorn

from hub.config import Settings
from hub.fastloop import settle_gc
from hub.front.protocol import HookFront, SlowClientLimits, protocol_class
from hub.runtime import Runtime

# The uvicorn settings of `hub serve` (the bench runs its floor with the same).
UVICORN_SETTINGS: dict[str, Any] = {"log_config": None, "access_log": False, "timeout_graceful_shutdown": 10}


def limits_for(settings: Settings) -> SlowClientLimits:
    return SlowClientLimits(settings.header_timeout, settings.min_body_rate, settings.body_rate_grace)


class FreezeAfterStartup:
    """Once the app has started, move everything start-up built out of the cyclic GC's sight: later
    collections then look at what requests allocate only (on ingest ~10 % of the CPU otherwise)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_then_freeze(message: dict[str, Any]) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                settle_gc()

        await self.app(scope, receive, send_then_freeze)


def serve(settings: Settings, host: str, port: int) -> None:
    from hub.app import create_asgi_app

    asgi = create_asgi_app(settings, delivery_process=settings.delivery_process)

    def runtime() -> Runtime:
        rt: Runtime = asgi.app.state.runtime
        return rt

    protocol = protocol_class(HookFront(runtime), limits_for(settings))
    uvicorn.run(FreezeAfterStartup(asgi), host=host, port=port, http=protocol, **UVICORN_SETTINGS)
