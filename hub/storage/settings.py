"""A storage source's settings (beside the connector's own): fetch, filters, OAuth2 client, API base URLs.

All are optional; a source without ``fetch_changes`` behaves as before issue 8. Base URLs default to the
provider's (``hub.storage.providers``) and are settings so tests point them at local stand-ins.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub.errors import invalid

MAX_FOLDERS = 50
MAX_TYPES = 100
# settings this module reads (documented in the connector specs); oauth_client_secret is a secret setting
NAMES = (
    "fetch_changes",
    "route_notifications",
    "watch_folders",
    "ignore_file_types",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_grant",
    "oauth_scope",
    "tenant",
    "drive",
    "drive_id",
    "manage_subscription",
    "subscription_hours",
    "api_base_url",
    "token_url",
    "authorize_url",
)


def _http_url(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http(s) URL")
    return str(value).rstrip("/")


def norm_folder(path: str) -> str:
    """``Sales/Forecasts/`` → ``/sales/forecasts``: the form paths are compared in (case-insensitive)."""
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    return ("/" + "/".join(parts)).lower()


class StorageSettings(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    fetch_changes: bool = Field(False, description="Fetch what changed on every notification (needs credentials).")
    route_notifications: bool = Field(
        False, description="With fetch_changes, still route the raw notification events (stored either way)."
    )
    watch_folders: list[str] = Field(
        default_factory=list,
        max_length=MAX_FOLDERS,
        description="Path prefixes to post changes of (case-insensitive); empty: the whole drive.",
    )
    ignore_file_types: list[str] = Field(
        default_factory=list,
        max_length=MAX_TYPES,
        description="Extensions (`tmp`, `.tmp`), name patterns (`~$*`) or MIME types (`image/*`) never posted.",
    )
    oauth_client_id: str = Field("", max_length=500)
    oauth_client_secret: str = Field("", max_length=2000)
    oauth_grant: Literal["authorization_code", "client_credentials"] = "authorization_code"
    oauth_scope: str | None = Field(None, max_length=2000)
    tenant: str = Field("common", min_length=1, max_length=200, pattern=r"^[A-Za-z0-9.\-]+$")
    drive: str = Field("/me/drive", min_length=1, max_length=500, pattern=r"^/[A-Za-z0-9!$&'()*+,;=:@%._~/\-]+$")
    drive_id: str = Field("", max_length=200, pattern=r"^[A-Za-z0-9_\-]*$")
    manage_subscription: bool = Field(True, description="hub creates, renews and deletes the provider subscription.")
    subscription_hours: float = Field(72.0, ge=1, le=705, description="Lifetime asked for a subscription or channel.")
    api_base_url: str | None = None
    token_url: str | None = None
    authorize_url: str | None = None

    @field_validator("api_base_url", "token_url", "authorize_url")
    @classmethod
    def _urls(cls, v: str | None) -> str | None:
        return _http_url(v)

    @field_validator("watch_folders")
    @classmethod
    def _folders(cls, v: list[str]) -> list[str]:
        out = []
        for folder in v:
            if not isinstance(folder, str) or len(folder) > 1000:
                raise ValueError("each folder is a path of at most 1000 characters")
            out.append(norm_folder(folder))
        return out

    @field_validator("ignore_file_types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        if any(not isinstance(x, str) or not x.strip() or len(x) > 200 for x in v):
            raise ValueError("each file type is a non-empty text of at most 200 characters")
        return [x.strip().lower() for x in v]


def parse_settings(settings: Mapping[str, Any]) -> StorageSettings:
    """A source's storage settings; ValueError naming the first bad one."""
    try:
        return StorageSettings.model_validate(dict(settings))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"settings.{where}: {err['msg']}") from None


def check_settings(connector: str, settings: Mapping[str, Any]) -> None:
    """For the sources API: a clear 422 on a bad storage setting (only for the storage connectors)."""
    from hub.storage.providers import provider_for

    if provider_for(connector) is None:
        return
    try:
        cfg = parse_settings(settings)
    except ValueError as exc:
        field = str(exc).split(":", 1)[0]
        raise invalid(str(exc), field=field) from None
    if cfg.oauth_grant == "client_credentials" and connector != "microsoft-graph":
        raise invalid(
            "client credentials are for microsoft-graph (application permissions)", field="settings.oauth_grant"
        )
    if cfg.oauth_grant == "client_credentials" and cfg.drive.lower().startswith("/me/"):
        raise invalid(
            "application permissions have no /me: set settings.drive to /drives/{drive-id} or /sites/{site-id}/drive",
            field="settings.drive",
        )
    if cfg.fetch_changes and not cfg.oauth_client_id:
        raise invalid("fetch_changes needs settings.oauth_client_id (the OAuth app)", field="settings.oauth_client_id")
