"""`hub serve`: the app under uvicorn, with hub's protocol (``protocol.py``) in front."""

from __future__ import annotations

import gc
from typing import Any

import uvicorn

from hub.config import Settings
from hub.front.protocol import HookFront, SlowClientLimits, protocol_class
from hub.runtime import Runtime

# The uvicorn settings of `hub serve` (the bench runs its floor with the same).
UVICORN_SETTINGS: dict[str, Any] = {"log_config": None, "access_log": False, "timeout_graceful_shutdown": 10}


def limits_for(settings: Settings) -> SlowClientLimits:
    return SlowClientLimits(settings.header_timeout, settings.min_body_rate, settings.body_rate_grace)


def serve(settings: Settings, host: str, port: int) -> None:
    from hub.app import create_asgi_app

    asgi = create_asgi_app(settings)

    def runtime() -> Runtime:
        rt: Runtime = asgi.app.state.runtime
        return rt

    protocol = protocol_class(HookFront(runtime), limits_for(settings))
    gc.freeze()  # what start-up built is not looked at by every collection
    uvicorn.run(asgi, host=host, port=port, http=protocol, **UVICORN_SETTINGS)
