"""The two bare servers the bench runs in subprocesses: the receiver (the mock RSE, shared with the tests:
``tests/receiver.py``) and the floor (a bare ASGI app under uvicorn with the settings of `hub serve`)."""

from __future__ import annotations

from typing import Any

from hubbench import HOST

FLOOR_ANSWER = b'{"event_id":"evt_0000000000000000floor000"}'  # the length of a hub answer


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def floor_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The floor: read the body, answer 202. What uvicorn alone costs per webhook."""
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    while True:
        msg = await receive()
        if not msg.get("more_body"):
            break
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(FLOOR_ANSWER)).encode())]
    await send({"type": "http.response.start", "status": 202, "headers": headers})
    await send({"type": "http.response.body", "body": FLOOR_ANSWER})


def serve_role(role: str, port: int) -> None:
    import uvicorn

    from hub.front.serve import UVICORN_SETTINGS
    from tests.receiver import Receiver

    app: Any = Receiver(compact=True) if role == "receiver" else floor_app
    uvicorn.run(app, host=HOST, port=port, **UVICORN_SETTINGS)
