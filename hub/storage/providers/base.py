"""What every storage provider module gives: its endpoints, its change feed, its subscription (if any).

Each provider module builds the documented requests, sends them through the injected
:class:`~hub.storage.client.ProviderClient` and reads the answers with pure functions (tested apart).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from hub.storage.client import ProviderClient, ProviderError
from hub.storage.model import Page
from hub.storage.settings import StorageSettings

MAX_ENTRIES = 5000  # changes read from one answer; a page beyond is refused rather than half-read
ADDED_WITHIN = 60.0  # seconds between an item's creation and its change for "added" (not "updated")


class CursorReset(Exception):
    """The provider invalidated the cursor (Dropbox ``reset``, Graph 410 resync): start again from the latest."""


class SubscriptionGone(Exception):
    """A renewal found the subscription gone (Graph 404): create it again."""


@dataclass(frozen=True)
class FeedContext:
    """One run of a feed: who the credentials are for (the connected account, for changes that do not say who
    made them), and the folder paths looked up so far (each folder once per run)."""

    account: str = ""
    account_name: str = ""
    folders: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionTarget:
    """Where and how the provider should notify: hub's ingest URL and the source's secret."""

    notification_url: str
    client_state: str
    lifetime: float  # seconds asked for


@dataclass(frozen=True)
class Subscription:
    remote_id: str
    expires_at: float
    resource: str = ""
    resource_id: str = ""


class Provider:
    """Base of the provider modules; subclasses set the class attributes and implement the feed."""

    connector: ClassVar[str]
    feed_api: ClassVar[str]  # the call that reads changes, named in each fetched event's lineage
    api_url: ClassVar[str]
    token_endpoint: ClassVar[str]
    authorize_endpoint: ClassVar[str]
    default_scope: ClassVar[str]
    authorize_extra: ClassVar[dict[str, str]] = {}
    max_subscription_hours: ClassVar[float | None] = None  # None: hub cannot subscribe (Dropbox: App Console)
    secret_is_client_secret: ClassVar[bool] = False  # the webhook secret is the OAuth app's (Dropbox's app secret)
    refresh_with_scope: ClassVar[bool] = False  # the refresh request repeats the scope (Microsoft asks for it)

    def api_base(self, cfg: StorageSettings) -> str:
        return cfg.api_base_url or self.api_url

    def token_url(self, cfg: StorageSettings) -> str:
        return cfg.token_url or self.token_endpoint.format(tenant=cfg.tenant)

    def authorize_url(self, cfg: StorageSettings) -> str:
        return cfg.authorize_url or self.authorize_endpoint.format(tenant=cfg.tenant)

    def scope(self, cfg: StorageSettings) -> str:
        return cfg.oauth_scope or self.default_scope

    def origins(self, cfg: StorageSettings) -> set[str]:
        from hub.storage.client import origin

        return {origin(self.api_base(cfg))}

    def feeds(self, event_type: str, payload: Any) -> list[str] | None:
        """The accounts a stored notification asks to fetch ("" for the source's one drive); None: it is
        not a change notification."""
        raise NotImplementedError

    async def baseline(self, api: ProviderClient, cfg: StorageSettings) -> str:
        """The cursor of "now": changes before it are never posted."""
        raise NotImplementedError

    async def page(self, api: ProviderClient, cfg: StorageSettings, cursor: str, ctx: FeedContext) -> Page:
        raise NotImplementedError

    async def whoami(self, api: ProviderClient, cfg: StorageSettings) -> tuple[str, str] | None:
        """The connected account's id and display name, when the provider says."""
        return None

    async def subscribe(
        self, api: ProviderClient, cfg: StorageSettings, target: SubscriptionTarget, now: float
    ) -> Subscription:
        raise NotImplementedError

    async def renew(
        self, api: ProviderClient, cfg: StorageSettings, target: SubscriptionTarget, sub: Subscription, now: float
    ) -> Subscription:
        raise NotImplementedError

    async def unsubscribe(self, api: ProviderClient, cfg: StorageSettings, sub: Subscription) -> None:
        raise NotImplementedError


def text(value: Any, limit: int = 1000) -> str:
    """A string field of an answer, or ''; bounded."""
    return value[:limit] if isinstance(value, str) else ""


def obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def entries(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProviderError(f"{what}: the list of changes is not a list", "refused")
    if len(value) > MAX_ENTRIES:
        raise ProviderError(f"{what}: more than {MAX_ENTRIES} changes in one answer", "refused")
    return [v for v in value if isinstance(v, dict)]


_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_time(value: Any) -> float | None:
    """An ISO 8601 time as the providers write it (Graph: 7 fractional digits, ``Z``) → epoch seconds."""
    if not isinstance(value, str) or not value:
        return None
    cleaned = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def iso_z(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parent_of(path: str) -> str:
    if not path or path == "/":
        return ""
    head = path.rstrip("/").rsplit("/", 1)[0]
    return head or "/"


def join(folder: str, name: str) -> str:
    if not folder or not name:
        return ""
    return f"{folder.rstrip('/')}/{name}"
