"""Microsoft Graph (OneDrive, SharePoint): the drive's delta query from a stored link, and subscriptions.

Docs (microsoftgraph/microsoft-graph-docs-contrib): api-reference/v1.0/api/driveitem-delta.md (``@odata.nextLink``
until an ``@odata.deltaLink``; ``?token=latest`` gives the latest link without listing the drive; a ``410 Gone``
asks for a resync; "the parentReference property on items won't include a value for path"; deleted items carry
the ``deleted`` facet and, on OneDrive for Business, no name), api-reference/v1.0/api/
subscription-post-subscriptions.md, subscription-update.md, subscription-delete.md, and
concepts/change-notifications-lifecycle-events.md.

- The cursor is the whole link Graph returned (a nextLink while a listing is under way, else the deltaLink);
  hub follows it only on the API's own origin (``api_base_url``), so an answer cannot send the token elsewhere.
- Paths: an item's folder is found from its ``parentReference.id`` — a folder in the same answer, else one
  ``GET /drives/{drive-id}/items/{id}`` per folder (bounded), whose ``parentReference.path`` Graph does give.
- Action: ``deleted`` facet → deleted; ``@microsoft.graph.sharedChanged`` (SharePoint / OneDrive for Business
  with ``Prefer: deltashowsharingchanges``) → shared; created within a minute of its last modification →
  added; else updated. Graph does not say "moved".
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote, unquote

from hub.storage.client import ProviderClient, ProviderError
from hub.storage.model import Action, Actor, Change, Item, Page
from hub.storage.providers.base import (
    ADDED_WITHIN,
    CursorReset,
    FeedContext,
    Provider,
    Subscription,
    SubscriptionGone,
    SubscriptionTarget,
    entries,
    iso_z,
    join,
    obj,
    parse_time,
    text,
)
from hub.storage.settings import StorageSettings

MAX_FOLDER_LOOKUPS = 50  # GETs of unknown folders per answer
MAX_DEPTH = 64
CHANGE_FEEDS = frozenset({"created", "updated", "deleted", "lifecycle.missed", "lifecycle.subscriptionRemoved"})
DELTA_HEADERS = {"deltaExcludeParent": "true"}  # the changed items, not every ancestor folder of theirs


def root_relative(path: str) -> str:
    """``/drive/root:/Sales%20Team/Forecasts`` (or ``/drives/{id}/root:…``) → ``/Sales Team/Forecasts``."""
    _, colon, rest = path.partition("root:")
    if not colon:
        return ""
    return unquote(rest) or "/"


def folder_ids(data: dict[str, Any]) -> list[str]:
    """The parent folders an answer's items name without a path, in order (what must be looked up)."""
    seen: dict[str, None] = {}
    for item in entries(data.get("value"), "delta"):
        parent = obj(item.get("parentReference"))
        pid = text(parent.get("id"), 300)
        if pid and not parent.get("path"):
            seen[pid] = None
    return list(seen)


def folders_in(data: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """Folders an answer itself lists: id → (name, parent id, is the root)."""
    out: dict[str, tuple[str, str, bool]] = {}
    for item in entries(data.get("value"), "delta"):
        if "folder" in item or "root" in item:
            out[text(item.get("id"), 300)] = (
                text(item.get("name"), 300),
                text(obj(item.get("parentReference")).get("id"), 300),
                "root" in item,
            )
    return out


def _action(item: dict[str, Any]) -> Action:
    if "deleted" in item:
        return "deleted"
    if str(item.get("@microsoft.graph.sharedChanged", "")).lower() == "true":
        return "shared"
    created, modified = parse_time(item.get("createdDateTime")), parse_time(item.get("lastModifiedDateTime"))
    if created is not None and modified is not None and modified - created <= ADDED_WITHIN:
        return "added"
    return "updated"


def parse_delta(data: dict[str, Any], paths: dict[str, str]) -> Page:
    """A delta answer → changes and the link to continue from. ``paths``: folder id → its path (``/`` the root)."""
    next_link, delta_link = data.get("@odata.nextLink"), data.get("@odata.deltaLink")
    link = next_link if isinstance(next_link, str) and next_link else delta_link
    if not isinstance(link, str) or not link:
        raise ProviderError("delta: the answer has neither @odata.nextLink nor @odata.deltaLink", "refused")
    changes: list[Change] = []
    skipped = 0
    for raw in entries(data.get("value"), "delta"):
        if "root" in raw or not text(raw.get("id")):
            skipped += 1
            continue
        parent = obj(raw.get("parentReference"))
        folder = root_relative(text(parent.get("path"), 4000)) or paths.get(text(parent.get("id"), 300), "")
        name = text(raw.get("name"), 300)
        size = raw.get("size")
        who = obj(obj(raw.get("lastModifiedBy")).get("user"))
        action = _action(raw)
        item = Item(
            "folder" if "folder" in raw else "file",
            text(raw.get("id"), 300),
            name,
            join(folder, name),
            folder,
            text(raw.get("webUrl"), 2000),
            size if isinstance(size, int) and not isinstance(size, bool) and "file" in raw else None,
            text(obj(raw.get("file")).get("mimeType"), 200),
            text(raw.get("lastModifiedDateTime"), 40),
        )
        actor = Actor(text(who.get("displayName"), 300), text(who.get("email"), 300), text(who.get("id"), 300))
        version = (
            "deleted"
            if action == "deleted"
            else (text(raw.get("eTag"), 300) or text(raw.get("cTag"), 300) or item.modified_at)
        )
        changes.append(Change(action, item, actor, version))
    return Page(changes, link, link is next_link, skipped)


class Graph(Provider):
    connector: ClassVar[str] = "microsoft-graph"
    feed_api: ClassVar[str] = "driveItem: delta"
    api_url: ClassVar[str] = "https://graph.microsoft.com/v1.0"
    token_endpoint: ClassVar[str] = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
    authorize_endpoint: ClassVar[str] = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/authorize"
    default_scope: ClassVar[str] = "offline_access Files.Read.All"
    app_scope: ClassVar[str] = "https://graph.microsoft.com/.default"
    authorize_extra: ClassVar[dict[str, str]] = {"response_mode": "query"}
    max_subscription_hours: ClassVar[float | None] = 42300 / 60  # driveItem: 42,300 minutes
    refresh_with_scope: ClassVar[bool] = True

    def scope(self, cfg: StorageSettings) -> str:
        if cfg.oauth_scope:
            return cfg.oauth_scope
        return self.app_scope if cfg.oauth_grant == "client_credentials" else self.default_scope

    def resource(self, cfg: StorageSettings) -> str:
        return f"{cfg.drive.rstrip('/')}/root"

    def feeds(self, event_type: str, payload: Any) -> list[str] | None:
        return [""] if event_type in CHANGE_FEEDS else None

    async def baseline(self, api: ProviderClient, cfg: StorageSettings) -> str:
        url = f"{self.api_base(cfg)}{self.resource(cfg)}/delta"
        answer = await api.call("GET", url, "delta?token=latest", params={"token": "latest"}, headers=DELTA_HEADERS)
        page = parse_delta(answer.object(), {})
        if page.more:
            raise ProviderError("delta?token=latest: Graph answered a nextLink, not the latest deltaLink", "refused")
        return page.cursor

    async def page(self, api: ProviderClient, cfg: StorageSettings, cursor: str, ctx: FeedContext) -> Page:
        try:
            answer = await api.call("GET", cursor, "delta", headers=DELTA_HEADERS)
        except ProviderError as exc:
            if exc.status == 410:  # resyncChangesApplyDifferences / resyncChangesUploadDifferences
                raise CursorReset(exc.message) from None
            raise
        data = answer.object()
        paths = await self._folder_paths(api, cfg, data, ctx.folders)
        return parse_delta(data, paths)

    async def _folder_paths(
        self, api: ProviderClient, cfg: StorageSettings, data: dict[str, Any], paths: dict[str, str]
    ) -> dict[str, str]:
        """Paths of the folders the answer's items are in (``paths``: those known, filled in): from the answer's
        own folders, else looked up."""
        listed = folders_in(data)
        lookups = 0

        async def path_of(folder_id: str, depth: int = 0) -> str:
            nonlocal lookups
            if folder_id in paths:
                return paths[folder_id]
            found = ""
            if depth > MAX_DEPTH:
                return ""
            if folder_id in listed:
                name, parent_id, is_root = listed[folder_id]
                found = "/" if is_root else join(await path_of(parent_id, depth + 1), name) if parent_id else ""
            elif lookups < MAX_FOLDER_LOOKUPS:
                lookups += 1
                found = await self._lookup(api, cfg, folder_id)
            paths[folder_id] = found
            return found

        for folder_id in folder_ids(data):
            await path_of(folder_id)
        return paths

    async def _lookup(self, api: ProviderClient, cfg: StorageSettings, folder_id: str) -> str:
        url = f"{self.api_base(cfg)}{cfg.drive.rstrip('/')}/items/{quote(folder_id, safe='!')}"
        try:
            answer = await api.call("GET", url, "get driveItem", params={"$select": "id,name,root,parentReference"})
        except ProviderError as exc:
            if exc.kind == "retry":
                raise
            return ""  # gone meanwhile, or not readable: the change is posted without its folder
        data = answer.object()
        if "root" in data:
            return "/"
        return join(
            root_relative(text(obj(data.get("parentReference")).get("path"), 4000)), text(data.get("name"), 300)
        )

    # --- subscriptions (subscription-post-subscriptions, subscription-update, subscription-delete) ------------

    async def subscribe(
        self, api: ProviderClient, cfg: StorageSettings, target: SubscriptionTarget, now: float
    ) -> Subscription:
        body = {
            "changeType": "updated",
            "notificationUrl": target.notification_url,
            "lifecycleNotificationUrl": target.notification_url,
            "resource": self.resource(cfg),
            "expirationDateTime": iso_z(now + target.lifetime),
            "clientState": target.client_state,
        }
        answer = await api.call("POST", f"{self.api_base(cfg)}/subscriptions", "create subscription", json_body=body)
        return _subscription(answer.object(), self.resource(cfg), "create subscription")

    async def renew(
        self, api: ProviderClient, cfg: StorageSettings, target: SubscriptionTarget, sub: Subscription, now: float
    ) -> Subscription:
        url = f"{self.api_base(cfg)}/subscriptions/{quote(sub.remote_id, safe='')}"
        try:
            answer = await api.call(
                "PATCH", url, "renew subscription", json_body={"expirationDateTime": iso_z(now + target.lifetime)}
            )
        except ProviderError as exc:
            if exc.status == 404:
                raise SubscriptionGone(exc.message) from None
            raise
        return _subscription(answer.object(), sub.resource, "renew subscription")

    async def unsubscribe(self, api: ProviderClient, cfg: StorageSettings, sub: Subscription) -> None:
        url = f"{self.api_base(cfg)}/subscriptions/{quote(sub.remote_id, safe='')}"
        try:
            await api.call("DELETE", url, "delete subscription")
        except ProviderError as exc:
            if exc.status != 404:
                raise


def _subscription(data: dict[str, Any], resource: str, what: str) -> Subscription:
    remote_id, expires = text(data.get("id"), 300), parse_time(data.get("expirationDateTime"))
    if not remote_id or expires is None:
        raise ProviderError(f"{what}: the answer has no id or expirationDateTime", "refused")
    return Subscription(remote_id, expires, text(data.get("resource"), 1000) or resource)
