"""Dropbox: ``files/list_folder/continue`` from a cursor per account.

Docs: https://www.dropbox.com/developers/documentation/http/documentation (files/list_folder,
files/list_folder/continue, files/list_folder/get_latest_cursor, users/get_current_account,
users/get_account_batch), https://www.dropbox.com/developers/reference/webhooks ("call
/files/list_folder/continue with the cursor you stored"), OAuth guide
https://developers.dropbox.com/oauth-guide (``token_access_type=offline`` gives a refresh token; PKCE).

- The first fetch takes ``get_latest_cursor`` (recursive, deleted entries included): what existed before
  is never posted.
- Entries are ``file`` (``rev``, ``size``, ``sharing_info.modified_by`` in shared folders — elsewhere the
  connected account made the change), ``folder`` and ``deleted`` (only a name and a path: Dropbox says
  neither who deleted it nor whether it was a file or a folder; hub calls it a file). Dropbox does not say
  whether a file was added or edited: its action is ``changed`` ("saved"). A ``deleted`` entry and a file
  of the same name elsewhere in one answer are a ``moved`` file (hub's reading, not Dropbox's word).
- ``409`` with ``reset/…``: the cursor was invalidated; hub starts again from the latest.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar
from urllib.parse import quote

from hub.storage.client import ProviderClient, ProviderError
from hub.storage.model import Actor, Change, Item, Page
from hub.storage.providers.base import CursorReset, FeedContext, Provider, entries, obj, parent_of, text
from hub.storage.settings import StorageSettings

HOME = "https://www.dropbox.com/home"
MAX_NAME_LOOKUPS = 50  # account ids resolved to names per answer (get_account_batch takes up to 300)


def _link(path: str, is_file: bool) -> str:
    if not path:
        return HOME
    if is_file:
        folder = parent_of(path)
        name = path.rsplit("/", 1)[-1]
        return f"{HOME}{quote(folder if folder != '/' else '')}?preview={quote(name, safe='')}"
    return f"{HOME}{quote(path)}"


def modified_by(data: dict[str, Any]) -> list[str]:
    """The account ids a list_folder answer names as editors (shared folders), in order, without repeats."""
    seen: dict[str, None] = {}
    for e in entries(data.get("entries"), "files/list_folder/continue"):
        who = text(obj(e.get("sharing_info")).get("modified_by"), 100)
        if who:
            seen[who] = None
    return list(seen)


def parse_list_folder(data: dict[str, Any], cursor_in: str, ctx: FeedContext, names: dict[str, str]) -> Page:
    """A ``ListFolderResult`` → changes, the next cursor and whether ``has_more``."""
    cursor = data.get("cursor")
    if not isinstance(cursor, str) or not cursor:
        raise ProviderError("files/list_folder/continue: the answer has no cursor", "refused")
    at = hashlib.sha256(cursor_in.encode()).hexdigest()[:16]  # where a deletion was read: a page re-read keeps it
    changes: list[Change] = []
    skipped = 0
    for e in entries(data.get("entries"), "files/list_folder/continue"):
        tag = e.get(".tag")
        path = text(e.get("path_display")) or text(e.get("path_lower"))
        name = text(e.get("name"), 300) or path.rsplit("/", 1)[-1]
        folder = parent_of(path)
        if tag == "deleted":
            item = Item("file", text(e.get("path_lower")) or path, name, path, folder, _link(folder, False))
            changes.append(Change("deleted", item, Actor(), f"deleted@{at}"))  # a deletion does not say who
        elif tag in ("file", "folder"):
            is_file = tag == "file"
            size = e.get("size")
            editor = text(obj(e.get("sharing_info")).get("modified_by"), 100)
            actor = Actor(names.get(editor, ""), "", editor) if editor else Actor(ctx.account_name, "", ctx.account)
            item = Item(
                "file" if is_file else "folder",
                text(e.get("id"), 300) or path,
                name,
                path,
                folder,
                _link(path, is_file),
                size if is_file and isinstance(size, int) and not isinstance(size, bool) else None,
                "",
                text(e.get("server_modified"), 40),
            )
            version = text(e.get("rev"), 100) if is_file else (text(e.get("path_lower")) or path)
            changes.append(Change("changed" if is_file else "added", item, actor, version))
        else:
            skipped += 1
    return Page(_pair_moves(changes), cursor, bool(data.get("has_more")), skipped, names)


def _pair_moves(changes: list[Change]) -> list[Change]:
    """A deletion and a saved file of the same name in another folder, in one answer: one move."""
    deleted = {c.item.name.lower(): c for c in changes if c.action == "deleted" and c.item.name}
    used: set[int] = set()
    out: list[Change] = []
    for c in changes:
        gone = deleted.get(c.item.name.lower()) if c.action == "changed" else None
        if gone is not None and id(gone) not in used and gone.item.folder.lower() != c.item.folder.lower():
            used.add(id(gone))
            out.append(Change("moved", c.item, c.actor, c.version, previous_path=gone.item.path))
        else:
            out.append(c)
    return [c for c in out if id(c) not in used]


def account_names(data: Any) -> dict[str, str]:
    """A ``get_account_batch`` answer (a list of ``BasicAccount``) → account id → display name."""
    out: dict[str, str] = {}
    for acc in data if isinstance(data, list) else []:
        acc = obj(acc)
        account_id, name = text(acc.get("account_id"), 100), text(obj(acc.get("name")).get("display_name"), 300)
        if account_id and name:
            out[account_id] = name
    return out


class Dropbox(Provider):
    connector: ClassVar[str] = "dropbox"
    feed_api: ClassVar[str] = "files/list_folder/continue"
    api_url: ClassVar[str] = "https://api.dropboxapi.com/2"
    token_endpoint: ClassVar[str] = "https://api.dropboxapi.com/oauth2/token"
    authorize_endpoint: ClassVar[str] = "https://www.dropbox.com/oauth2/authorize"
    default_scope: ClassVar[str] = "files.metadata.read account_info.read sharing.read"
    authorize_extra: ClassVar[dict[str, str]] = {"token_access_type": "offline"}
    secret_is_client_secret: ClassVar[bool] = True

    def feeds(self, event_type: str, payload: Any) -> list[str] | None:
        if event_type != "list_folder":
            return None
        accounts = obj(obj(payload).get("list_folder")).get("accounts")
        return [a for a in accounts[:1000] if isinstance(a, str) and a] if isinstance(accounts, list) else []

    async def baseline(self, api: ProviderClient, cfg: StorageSettings) -> str:
        what = "files/list_folder/get_latest_cursor"
        body = {"path": "", "recursive": True, "include_deleted": True}
        answer = await api.call("POST", f"{self.api_base(cfg)}/{what}", what, json_body=body)
        cursor = answer.object().get("cursor")
        if not isinstance(cursor, str) or not cursor:
            raise ProviderError(f"{what}: the answer has no cursor", "refused")
        return cursor

    async def page(self, api: ProviderClient, cfg: StorageSettings, cursor: str, ctx: FeedContext) -> Page:
        try:
            answer = await api.call(
                "POST", f"{self.api_base(cfg)}/{self.feed_api}", self.feed_api, json_body={"cursor": cursor}
            )
        except ProviderError as exc:
            if exc.status == 409 and exc.code.startswith("reset"):
                raise CursorReset(exc.message) from None
            raise
        data = answer.object()
        names = await self._names(api, cfg, modified_by(data)[:MAX_NAME_LOOKUPS])
        return parse_list_folder(data, cursor, ctx, names)

    async def _names(self, api: ProviderClient, cfg: StorageSettings, ids: list[str]) -> dict[str, str]:
        if not ids:
            return {}
        what = "users/get_account_batch"
        try:
            answer = await api.call("POST", f"{self.api_base(cfg)}/{what}", what, json_body={"account_ids": ids})
        except ProviderError as exc:
            if exc.kind == "retry":
                raise
            return {}  # names are a nicety (the scope may be missing): the ids stay
        return account_names(answer.json())

    async def whoami(self, api: ProviderClient, cfg: StorageSettings) -> tuple[str, str] | None:
        what = "users/get_current_account"
        try:
            answer = await api.call(
                "POST",
                f"{self.api_base(cfg)}/{what}",
                what,
                raw_body=b"null",
                headers={"Content-Type": "application/json"},
            )
        except ProviderError as exc:
            if exc.kind == "retry":
                raise
            return None
        data = answer.object()
        account = text(data.get("account_id"), 100)
        return (account, text(obj(data.get("name")).get("display_name"), 300)) if account else None
