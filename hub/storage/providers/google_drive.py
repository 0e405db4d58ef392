"""Google Drive: ``changes.list`` from a stored page token, and ``changes.watch`` channels.

Docs: https://developers.google.com/workspace/drive/api/reference/rest/v3/changes/list (``nextPageToken`` while
more pages follow, ``newStartPageToken`` on the last one), .../changes/getStartPageToken, .../changes/watch,
.../channels/stop, the push guide https://developers.google.com/workspace/drive/api/guides/push (channels
expire: a new channel before the old one ends, then stop the old one), and
https://developers.google.com/identity/protocols/oauth2/web-server (``access_type=offline``, PKCE).

- The first fetch takes ``changes.getStartPageToken``: what existed before is never posted.
- A change is ``removed`` (gone, or access lost: no file in it) → deleted; its file ``trashed`` → deleted
  (to the trash); a file created within a minute of the change → added; else updated. Drive does not say
  "moved" nor "shared". Changes of a shared drive itself (``changeType: drive``) are skipped.
- Paths: a file's ``parents`` are looked up (``files.get``, bounded) up to My Drive or the shared drive.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, ClassVar
from urllib.parse import quote

from hub.storage.client import ProviderClient, ProviderError
from hub.storage.model import Action, Actor, Change, Item, Page
from hub.storage.providers.base import (
    ADDED_WITHIN,
    FeedContext,
    Provider,
    Subscription,
    SubscriptionTarget,
    entries,
    join,
    obj,
    parse_time,
    text,
)
from hub.storage.settings import StorageSettings

FOLDER = "application/vnd.google-apps.folder"
PAGE_SIZE = "200"
MAX_FOLDER_LOOKUPS = 50
MAX_DEPTH = 32
FILE_FIELDS = (
    "id,name,mimeType,parents,webViewLink,size,trashed,createdTime,modifiedTime,"
    "lastModifyingUser(displayName,emailAddress,permissionId)"
)
FIELDS = f"nextPageToken,newStartPageToken,changes(changeType,time,removed,fileId,file({FILE_FIELDS}))"
OPEN = "https://drive.google.com/open?id="


def parents_needed(data: dict[str, Any]) -> list[str]:
    seen: dict[str, None] = {}
    for change in entries(data.get("changes"), "changes.list"):
        parents = obj(change.get("file")).get("parents")
        if isinstance(parents, list) and parents and isinstance(parents[0], str):
            seen[parents[0]] = None
    return list(seen)


def _action(change: dict[str, Any], file: dict[str, Any]) -> tuple[Action, bool]:
    if change.get("removed") is True or not file:
        return "deleted", False
    if file.get("trashed") is True:
        return "deleted", True
    created, at = parse_time(file.get("createdTime")), parse_time(change.get("time"))
    if created is not None and at is not None and at - created <= ADDED_WITHIN:
        return "added", False
    return "updated", False


def parse_changes(data: dict[str, Any], paths: dict[str, str]) -> Page:
    """A ``ChangeList`` → changes and the token to continue from. ``paths``: folder id → its path."""
    next_token, new_start = data.get("nextPageToken"), data.get("newStartPageToken")
    token = next_token if isinstance(next_token, str) and next_token else new_start
    if not isinstance(token, str) or not token:
        raise ProviderError("changes.list: the answer has neither nextPageToken nor newStartPageToken", "refused")
    changes: list[Change] = []
    skipped = 0
    for change in entries(data.get("changes"), "changes.list"):
        file_id = text(change.get("fileId"), 300)
        if change.get("changeType", "file") != "file" or not file_id:
            skipped += 1
            continue
        file = obj(change.get("file"))
        action, trashed = _action(change, file)
        parents = file.get("parents")
        folder = (
            paths.get(parents[0], "") if isinstance(parents, list) and parents and isinstance(parents[0], str) else ""
        )
        name = text(file.get("name"), 300)
        size = text(file.get("size"), 30)
        who = obj(file.get("lastModifyingUser"))
        mime = text(file.get("mimeType"), 200)
        item = Item(
            "folder" if mime == FOLDER else "file",
            file_id,
            name,
            join(folder, name),
            folder,
            text(file.get("webViewLink"), 2000) or OPEN + quote(file_id, safe=""),
            int(size) if size.isdigit() else None,
            mime,
            text(file.get("modifiedTime"), 40),
        )
        actor = Actor(
            text(who.get("displayName"), 300), text(who.get("emailAddress"), 300), text(who.get("permissionId"), 300)
        )
        changes.append(Change(action, item, actor, text(change.get("time"), 40) or token, trashed=trashed))
    return Page(changes, token, token is next_token, skipped)


class GoogleDrive(Provider):
    connector: ClassVar[str] = "google-drive"
    feed_api: ClassVar[str] = "changes.list"
    api_url: ClassVar[str] = "https://www.googleapis.com/drive/v3"
    token_endpoint: ClassVar[str] = "https://oauth2.googleapis.com/token"
    authorize_endpoint: ClassVar[str] = "https://accounts.google.com/o/oauth2/v2/auth"
    default_scope: ClassVar[str] = "https://www.googleapis.com/auth/drive.metadata.readonly"
    authorize_extra: ClassVar[dict[str, str]] = {"access_type": "offline", "prompt": "consent"}
    max_subscription_hours: ClassVar[float | None] = 7 * 24.0  # changes channels: at most a week

    def _drive_params(self, cfg: StorageSettings) -> dict[str, str]:
        params = {"supportsAllDrives": "true"}
        if cfg.drive_id:
            params.update(driveId=cfg.drive_id, includeItemsFromAllDrives="true")
        return params

    def feeds(self, event_type: str, payload: Any) -> list[str] | None:
        return None if event_type == "sync" else [""]

    async def baseline(self, api: ProviderClient, cfg: StorageSettings) -> str:
        answer = await api.call(
            "GET",
            f"{self.api_base(cfg)}/changes/startPageToken",
            "changes.getStartPageToken",
            params=self._drive_params(cfg),
        )
        token = answer.object().get("startPageToken")
        if not isinstance(token, str) or not token:
            raise ProviderError("changes.getStartPageToken: the answer has no startPageToken", "refused")
        return token

    async def page(self, api: ProviderClient, cfg: StorageSettings, cursor: str, ctx: FeedContext) -> Page:
        params = {
            **self._drive_params(cfg),
            "pageToken": cursor,
            "pageSize": PAGE_SIZE,
            "includeRemoved": "true",
            "spaces": "drive",
            "fields": FIELDS,
        }
        if not cfg.drive_id:
            params["includeItemsFromAllDrives"] = "true"
        answer = await api.call("GET", f"{self.api_base(cfg)}/changes", self.feed_api, params=params)
        data = answer.object()
        paths = await self._paths(api, cfg, data, ctx.folders)
        return parse_changes(data, paths)

    async def _paths(
        self, api: ProviderClient, cfg: StorageSettings, data: dict[str, Any], paths: dict[str, str]
    ) -> dict[str, str]:
        """Paths of the folders the answer's files are in (``paths``: those known this run, filled in)."""
        known: dict[str, tuple[str, str | None]] = {}  # folder id → (name, its parent) as looked up
        for change in entries(data.get("changes"), "changes.list"):
            file = obj(change.get("file"))
            if file.get("mimeType") == FOLDER and isinstance(file.get("id"), str):
                parents = file.get("parents")
                parent = parents[0] if isinstance(parents, list) and parents and isinstance(parents[0], str) else None
                known[file["id"]] = (text(file.get("name"), 300), parent)
        lookups = 0

        async def path_of(folder_id: str, depth: int = 0) -> str:
            nonlocal lookups
            if folder_id in paths:
                return paths[folder_id]
            if depth > MAX_DEPTH or folder_id == cfg.drive_id:
                return "/"
            if folder_id not in known:
                if lookups >= MAX_FOLDER_LOOKUPS:
                    return ""
                lookups += 1
                known[folder_id] = await self._lookup(api, cfg, folder_id)
            name, parent = known[folder_id]
            found = "/" if parent is None else join(await path_of(parent, depth + 1) or "", name)
            paths[folder_id] = found
            return found

        for folder_id in parents_needed(data):
            await path_of(folder_id)
        return paths

    async def _lookup(self, api: ProviderClient, cfg: StorageSettings, folder_id: str) -> tuple[str, str | None]:
        """A folder's name and parent (None: the top, My Drive or a shared drive)."""
        url = f"{self.api_base(cfg)}/files/{quote(folder_id, safe='')}"
        try:
            answer = await api.call(
                "GET", url, "files.get", params={"fields": "id,name,parents", "supportsAllDrives": "true"}
            )
        except ProviderError as exc:
            if exc.kind == "retry":
                raise
            return "", None
        data = answer.object()
        parents = data.get("parents")
        parent = parents[0] if isinstance(parents, list) and parents and isinstance(parents[0], str) else None
        return text(data.get("name"), 300), parent

    # --- watch channels (changes.watch, channels.stop) -------------------------------------------------------

    async def subscribe(
        self, api: ProviderClient, cfg: StorageSettings, target: SubscriptionTarget, now: float
    ) -> Subscription:
        token = await self.baseline(api, cfg)  # the channel's own start: hub reads changes from its stored cursor
        body = {
            "id": str(uuid.uuid4()),
            "type": "web_hook",
            "address": target.notification_url,
            "token": target.client_state,
            "expiration": int((now + target.lifetime) * 1000),
        }
        params = {**self._drive_params(cfg), "pageToken": token}
        answer = await api.call(
            "POST", f"{self.api_base(cfg)}/changes/watch", "changes.watch", json_body=body, params=params
        )
        data = answer.object()
        channel, resource_id = text(data.get("id"), 300), text(data.get("resourceId"), 300)
        expiration = data.get("expiration")
        expires = int(expiration) / 1000 if isinstance(expiration, str | int) and str(expiration).isdigit() else None
        if not channel or not resource_id or expires is None:
            raise ProviderError("changes.watch: the answer has no id, resourceId or expiration", "refused")
        return Subscription(channel, expires, text(data.get("resourceUri"), 1000) or "changes", resource_id)

    async def renew(
        self, api: ProviderClient, cfg: StorageSettings, target: SubscriptionTarget, sub: Subscription, now: float
    ) -> Subscription:
        """A channel cannot be extended: a new one first, then the old one stopped (its failure only logged)."""
        fresh = await self.subscribe(api, cfg, target, now)
        with contextlib.suppress(ProviderError):  # it expires on its own; what it still sends only asks for a fetch
            await self.unsubscribe(api, cfg, sub)
        return fresh

    async def unsubscribe(self, api: ProviderClient, cfg: StorageSettings, sub: Subscription) -> None:
        body = {"id": sub.remote_id, "resourceId": sub.resource_id}
        try:
            await api.call("POST", f"{self.api_base(cfg)}/channels/stop", "channels.stop", json_body=body)
        except ProviderError as exc:
            if exc.status != 404:
                raise
