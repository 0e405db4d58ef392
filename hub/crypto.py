"""Secrets at rest (Fernet) and API key hashing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from hub.config import ConfigError, Settings


class SecretBox:
    """Encrypts and decrypts small secrets (webhook secrets, target tokens, target URLs)."""

    def __init__(self, key: str) -> None:
        self._key = key
        digest = hashlib.sha256(key.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def derived(self, purpose: str) -> SecretBox:
        """A box with its own key for ``purpose`` (e.g. cookies): its tokens never open as stored secrets."""
        return SecretBox(hmac.new(self._key.encode(), purpose.encode(), hashlib.sha256).hexdigest())

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted: HUB_SECRET_KEY changed?") from None

    def seal_json(self, value: dict[str, Any]) -> str:
        return self.seal(json.dumps(value, separators=(",", ":")))

    def open_json(self, token: str | None) -> dict[str, Any]:
        if not token:
            return {}
        loaded: dict[str, Any] = json.loads(self.open(token))
        return loaded


def secret_box_for(settings: Settings) -> SecretBox:
    """Use HUB_SECRET_KEY, or on the embedded default a key generated once in the data dir."""
    if settings.secret_key:
        if len(settings.secret_key) < 16:
            raise ConfigError("invalid configuration: HUB_SECRET_KEY: must be at least 16 characters")
        return SecretBox(settings.secret_key)
    if not settings.is_sqlite:
        raise ConfigError("invalid configuration: HUB_SECRET_KEY: required with a shared database")
    path = Path(settings.data_dir) / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return SecretBox(path.read_text().strip())


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "hub_" + secrets.token_urlsafe(32)
