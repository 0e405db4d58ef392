"""The storage providers hub fetches changes from, by connector id."""

from __future__ import annotations

from hub.storage.providers.base import Provider
from hub.storage.providers.dropbox import Dropbox
from hub.storage.providers.google_drive import GoogleDrive
from hub.storage.providers.graph import Graph

PROVIDERS: dict[str, Provider] = {p.connector: p for p in (Dropbox(), Graph(), GoogleDrive())}


def provider_for(connector: str) -> Provider | None:
    return PROVIDERS.get(connector)
