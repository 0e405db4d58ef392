"""The HTTP front of `hub serve`: uvicorn with hub's own protocol class (webhooks without ASGI, slow
clients cut off)."""
