"""Local stand-ins of the storage providers' APIs, written from their documentation (never from hub's code):
one real HTTP server on a free port of 127.0.0.1 with, under a prefix per provider:

- an OAuth2 authorization server (RFC 6749 + PKCE RFC 7636): ``authorize`` consents at once and redirects with a
  code bound to its S256 challenge; ``token`` answers ``authorization_code``, ``refresh_token`` and
  ``client_credentials`` grants (client authenticated in the body, ``client_secret_post``), access tokens expire;
- Dropbox (https://www.dropbox.com/developers/documentation/http/documentation):
  ``files/list_folder/get_latest_cursor``, ``files/list_folder/continue`` (``entries``, ``cursor``,
  ``has_more``; ``409 reset/``), ``users/get_current_account``, ``users/get_account_batch``;
  the token answer names ``account_id``;
- Microsoft Graph (driveitem-delta.md, subscription-post-subscriptions.md, subscription-update.md,
  subscription-delete.md): ``/me/drive/root/delta`` (``?token=latest``; ``@odata.nextLink`` then
  ``@odata.deltaLink``; ``410`` resync), ``/me/drive/items/{id}`` (``parentReference.path`` percent-encoded),
  ``/subscriptions`` POST / PATCH / DELETE;
- Google Drive v3 (changes.getStartPageToken, changes.list, changes.watch, channels.stop, files.get):
  ``nextPageToken`` then ``newStartPageToken``.

Every API call needs a live bearer token (else 401). ``fail`` queues answers (status, headers, body) given
instead of the next API calls; ``gate`` holds API answers until set. Changes are appended to each provider's
journal; a cursor is a position in it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.receiver import free_port

CLIENT_ID = "hub-storage-app"
CLIENT_SECRET = "storage-client-secret-0123456789"
DROPBOX_ACCOUNT = "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc"
OTHER_ACCOUNT = "dbid:AAAAOtherEditorOfTheSharedFolder000000"


@dataclass
class Code:
    challenge: str
    redirect_uri: str
    scope: str


@dataclass
class OAuthServer:
    """One provider's authorization server."""

    access_ttl: float = 3600.0
    rotate_refresh: bool = False  # Microsoft rotates refresh tokens
    account_id: str | None = None  # Dropbox names the account in its token answer
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    access: dict[str, float] = field(default_factory=dict)  # access token → expiry
    token_requests: list[dict[str, str]] = field(default_factory=list)
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    refuse_grants: bool = False

    def new_refresh_token(self) -> str:
        token = "rt-" + secrets.token_urlsafe(12)
        self.refresh_tokens.add(token)
        return token

    def _issue(self, refresh: bool, scope: str) -> dict[str, Any]:
        token = "at-" + secrets.token_urlsafe(12)
        self.access[token] = time.time() + self.access_ttl
        answer: dict[str, Any] = {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": int(self.access_ttl),
            "scope": scope,
        }
        if refresh:
            answer["refresh_token"] = self.new_refresh_token()
        if self.account_id:
            answer["account_id"] = self.account_id
        return answer

    def revoke_access(self) -> None:
        self.access.clear()

    def expire_access(self) -> None:
        for token in self.access:
            self.access[token] = time.time() - 1

    def valid(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        return self.access.get(token, 0) > time.time()

    async def authorize(self, request: Request) -> Response:
        q = dict(request.query_params)
        self.authorize_requests.append(q)
        if q.get("client_id") != CLIENT_ID or q.get("code_challenge_method") != "S256":
            return JSONResponse({"error": "invalid_request"}, 400)
        code = "code-" + secrets.token_urlsafe(8)
        self.codes[code] = Code(q["code_challenge"], q["redirect_uri"], q.get("scope", ""))
        return RedirectResponse(f"{q['redirect_uri']}?{urlencode({'code': code, 'state': q['state']})}", 302)

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        self.token_requests.append(form)
        if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
            return JSONResponse({"error": "invalid_client"}, 401)
        if self.refuse_grants:
            return JSONResponse({"error": "invalid_grant", "error_description": "revoked"}, 400)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = self.codes.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if code is None or code.challenge != challenge or code.redirect_uri != form.get("redirect_uri"):
                return JSONResponse({"error": "invalid_grant"}, 400)
            return JSONResponse(self._issue(True, code.scope))
        if grant == "refresh_token":
            rt = form.get("refresh_token", "")
            if rt not in self.refresh_tokens:
                return JSONResponse({"error": "invalid_grant"}, 400)
            answer = self._issue(self.rotate_refresh, form.get("scope", ""))
            if self.rotate_refresh:
                self.refresh_tokens.discard(rt)
            answer.pop("account_id", None)  # only the code exchange names the account
            return JSONResponse(answer)
        if grant == "client_credentials":
            return JSONResponse(self._issue(False, form.get("scope", "")))
        return JSONResponse({"error": "unsupported_grant_type"}, 400)


@dataclass
class Api:
    """What every provider API stand-in shares: its OAuth server, failures to inject, a gate, a request log."""

    oauth: OAuthServer = field(default_factory=OAuthServer)
    fail: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    calls: list[str] = field(default_factory=list)
    journal: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    hold: dict[str, int] = field(default_factory=dict)  # call name → calls answered before the gate holds them

    async def guard(self, request: Request, name: str) -> Response | None:
        self.calls.append(name)
        if name in self.hold:
            self.hold[name] -= 1
            if self.hold[name] < 0 and self.gate is not None:
                await self.gate.wait()
        elif self.gate is not None:
            await self.gate.wait()
        if not self.oauth.valid(request):
            return JSONResponse({"error": {"code": "InvalidAuthenticationToken"}}, 401)
        if self.fail:
            status, headers, body = self.fail.pop(0)
            return JSONResponse(body, status, headers=headers)
        return None

    def count(self, name: str) -> int:
        return sum(1 for c in self.calls if c == name)


# --- Dropbox -------------------------------------------------------------------------------------------------


def dropbox_file(path: str, rev: str, size: int = 48213, modified_by: str | None = None) -> dict[str, Any]:
    """A FileMetadata entry as files/list_folder documents it."""
    entry: dict[str, Any] = {
        ".tag": "file",
        "name": path.rsplit("/", 1)[-1],
        "id": "id:" + hashlib.sha1(path.lower().encode()).hexdigest()[:22],
        "client_modified": "2024-07-01T09:00:00Z",
        "server_modified": "2024-07-01T09:00:01Z",
        "rev": rev,
        "size": size,
        "path_lower": path.lower(),
        "path_display": path,
        "is_downloadable": True,
        "content_hash": hashlib.sha256(rev.encode()).hexdigest(),
    }
    if modified_by:
        entry["sharing_info"] = {
            "read_only": False,
            "parent_shared_folder_id": "84528192421",
            "modified_by": modified_by,
        }
    return entry


def dropbox_folder(path: str) -> dict[str, Any]:
    return {
        ".tag": "folder",
        "name": path.rsplit("/", 1)[-1],
        "id": "id:" + hashlib.sha1(path.lower().encode()).hexdigest()[:22],
        "path_lower": path.lower(),
        "path_display": path,
    }


def dropbox_deleted(path: str) -> dict[str, Any]:
    return {".tag": "deleted", "name": path.rsplit("/", 1)[-1], "path_lower": path.lower(), "path_display": path}


@dataclass
class DropboxApi(Api):
    names: dict[str, str] = field(
        default_factory=lambda: {DROPBOX_ACCOUNT: "Marie Dupont", OTHER_ACCOUNT: "Paul Martin"}
    )
    reset_cursors: bool = False  # list_folder/continue answers 409 reset

    async def rpc(self, request: Request) -> Response:
        name = request.path_params["name"]
        refused = await self.guard(request, name)
        if refused is not None:
            return refused
        body = await request.body()
        args = json.loads(body) if body else None
        if name == "files/list_folder/get_latest_cursor":
            return JSONResponse({"cursor": f"c-{len(self.journal)}"})
        if name == "files/list_folder/continue":
            if self.reset_cursors:
                return JSONResponse({"error_summary": "reset/..", "error": {".tag": "reset"}}, 409)
            cursor = str(args.get("cursor", "")) if isinstance(args, dict) else ""
            if not cursor.startswith("c-") or not cursor[2:].isdigit():
                return Response("Error in call to API function: cursor", 400)
            start = int(cursor[2:])
            end = min(start + self.page_size, len(self.journal))
            return JSONResponse(
                {"entries": self.journal[start:end], "cursor": f"c-{end}", "has_more": end < len(self.journal)}
            )
        if name == "users/get_current_account":
            return JSONResponse(
                {
                    "account_id": DROPBOX_ACCOUNT,
                    "name": {"display_name": self.names[DROPBOX_ACCOUNT], "given_name": "Marie"},
                    "email": "marie@example.com",
                }
            )
        if name == "users/get_account_batch":
            ids = args.get("account_ids", []) if isinstance(args, dict) else []
            return JSONResponse(
                [{"account_id": a, "name": {"display_name": self.names[a]}} for a in ids if a in self.names]
            )
        return JSONResponse({"error_summary": "not_found/"}, 404)


# --- Microsoft Graph -------------------------------------------------------------------------------------------


def graph_item(
    item_id: str,
    name: str,
    parent_id: str,
    *,
    folder: bool = False,
    deleted: bool = False,
    created: str = "2024-07-01T09:00:00Z",
    modified: str = "2024-07-01T09:00:00Z",
    by: str = "Marie Dupont",
    etag: str = "",
) -> dict[str, Any]:
    """A driveItem as delta returns it: no parentReference.path (the doc says so)."""
    item: dict[str, Any] = {
        "id": item_id,
        "name": name,
        "parentReference": {"driveId": "b!drive", "driveType": "business", "id": parent_id},
        "createdDateTime": created,
        "lastModifiedDateTime": modified,
        "eTag": etag or f'"{{{item_id}}},1"',
        "webUrl": f"https://contoso.sharepoint.com/Shared%20Documents/{quote(name)}",
        "lastModifiedBy": {"user": {"displayName": by, "email": "marie@contoso.com", "id": "u-1"}},
    }
    if folder:
        item["folder"] = {"childCount": 0}
    else:
        item["file"] = {"mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
        item["size"] = 48213
    if deleted:
        item = {"id": item_id, "deleted": {"state": "deleted"}, "parentReference": item["parentReference"]}
        if folder:
            item["folder"] = {}
    return item


@dataclass
class GraphApi(Api):
    base: str = ""
    folders: dict[str, tuple[str, str | None]] = field(
        default_factory=lambda: {
            "root-id": ("root", None),
            "sales-id": ("Sales", "root-id"),
            "fc-id": ("Forecasts", "sales-id"),
        }
    )
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    resync: bool = False  # delta answers 410 Gone (resyncChangesApplyDifferences)
    refuse_subscriptions: int = 0  # POST/PATCH /subscriptions answer 403 this many times

    def _link(self, n: int, kind: str) -> str:
        return f"{self.base}/me/drive/root/delta?token={kind}{n}"

    async def delta(self, request: Request) -> Response:
        refused = await self.guard(request, "delta")
        if refused is not None:
            return refused
        token = request.query_params.get("token", "")
        if token == "latest":
            return JSONResponse({"value": [], "@odata.deltaLink": self._link(len(self.journal), "d")})
        if self.resync:
            return JSONResponse({"error": {"code": "resyncRequired", "message": "Resync required."}}, 410)
        if not token[1:].isdigit():
            return JSONResponse({"error": {"code": "invalidRequest"}}, 400)
        start = int(token[1:])
        end = min(start + self.page_size, len(self.journal))
        body: dict[str, Any] = {"value": self.journal[start:end]}
        if end < len(self.journal):
            body["@odata.nextLink"] = self._link(end, "n")
        else:
            body["@odata.deltaLink"] = self._link(end, "d")
        return JSONResponse(body)

    def path_of(self, folder_id: str) -> str:
        name, parent = self.folders[folder_id]
        if parent is None:
            return ""
        return f"{self.path_of(parent)}/{name}"

    async def item(self, request: Request) -> Response:
        refused = await self.guard(request, "item")
        if refused is not None:
            return refused
        item_id = request.path_params["item_id"]
        if item_id not in self.folders:
            return JSONResponse({"error": {"code": "itemNotFound"}}, 404)
        name, parent = self.folders[item_id]
        if parent is None:
            return JSONResponse({"id": item_id, "name": "root", "root": {}})
        parent_path = "/drive/root:" + quote(self.path_of(parent))
        return JSONResponse({"id": item_id, "name": name, "parentReference": {"id": parent, "path": parent_path}})

    async def subscriptions_api(self, request: Request) -> Response:
        sub_id = request.path_params.get("sub_id")
        refused = await self.guard(request, f"subscriptions {request.method}")
        if refused is not None:
            return refused
        if request.method in ("POST", "PATCH") and self.refuse_subscriptions:
            self.refuse_subscriptions -= 1
            return JSONResponse(
                {
                    "error": {
                        "code": "ExtensionError",
                        "message": "Operation: Create; Exception: [Status Code: Forbidden]",
                    }
                },
                403,
            )
        if request.method == "POST":
            body = json.loads(await request.body())
            for key in ("changeType", "notificationUrl", "resource", "expirationDateTime", "clientState"):
                if not body.get(key):
                    return JSONResponse({"error": {"code": "InvalidRequest", "message": f"{key} missing"}}, 400)
            sub = {"id": "sub-" + secrets.token_hex(6), **body}
            self.subscriptions[sub["id"]] = sub
            return JSONResponse(sub, 201)
        if sub_id not in self.subscriptions:
            return JSONResponse({"error": {"code": "ResourceNotFound"}}, 404)
        if request.method == "PATCH":
            self.subscriptions[sub_id]["expirationDateTime"] = json.loads(await request.body())["expirationDateTime"]
            return JSONResponse(self.subscriptions[sub_id])
        if request.method == "DELETE":
            del self.subscriptions[sub_id]
            return Response(status_code=204)
        return JSONResponse(self.subscriptions[sub_id])


# --- Google Drive -------------------------------------------------------------------------------------------


def drive_change(
    file_id: str,
    name: str,
    parent: str,
    at: str,
    *,
    created: str | None = None,
    trashed: bool = False,
    removed: bool = False,
    folder: bool = False,
) -> dict[str, Any]:
    """A Change resource (v3) with the fields hub asks for."""
    change: dict[str, Any] = {
        "kind": "drive#change",
        "changeType": "file",
        "time": at,
        "removed": removed,
        "fileId": file_id,
    }
    if not removed:
        change["file"] = {
            "id": file_id,
            "name": name,
            "mimeType": "application/vnd.google-apps.folder" if folder else "application/pdf",
            "parents": [parent],
            "webViewLink": f"https://drive.google.com/file/d/{file_id}/view",
            "trashed": trashed,
            "createdTime": created or at,
            "modifiedTime": at,
            "lastModifyingUser": {
                "displayName": "Marie Dupont",
                "emailAddress": "marie@example.com",
                "permissionId": "p1",
            },
        }
        if not folder:
            change["file"]["size"] = "48213"
    return change


@dataclass
class DriveApi(Api):
    folders: dict[str, tuple[str, str | None]] = field(
        default_factory=lambda: {"root": ("My Drive", None), "sales": ("Sales", "root"), "fc": ("Forecasts", "sales")}
    )
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    stopped: list[str] = field(default_factory=list)

    async def start_token(self, request: Request) -> Response:
        refused = await self.guard(request, "startPageToken")
        return refused or JSONResponse({"kind": "drive#startPageToken", "startPageToken": str(len(self.journal))})

    async def changes(self, request: Request) -> Response:
        refused = await self.guard(request, "changes.list")
        if refused is not None:
            return refused
        token = request.query_params.get("pageToken", "")
        if not token.isdigit() or "fields" not in request.query_params:
            return JSONResponse({"error": {"code": 400, "message": "Invalid Value", "status": "INVALID_ARGUMENT"}}, 400)
        start = int(token)
        end = min(start + self.page_size, len(self.journal))
        body: dict[str, Any] = {"kind": "drive#changeList", "changes": self.journal[start:end]}
        body["nextPageToken" if end < len(self.journal) else "newStartPageToken"] = str(end)
        return JSONResponse(body)

    async def file(self, request: Request) -> Response:
        refused = await self.guard(request, "files.get")
        if refused is not None:
            return refused
        file_id = request.path_params["file_id"]
        if file_id not in self.folders:
            return JSONResponse({"error": {"code": 404, "message": "File not found", "status": "NOT_FOUND"}}, 404)
        name, parent = self.folders[file_id]
        return JSONResponse({"id": file_id, "name": name, **({"parents": [parent]} if parent else {})})

    async def watch(self, request: Request) -> Response:
        refused = await self.guard(request, "changes.watch")
        if refused is not None:
            return refused
        body = json.loads(await request.body())
        if body.get("type") != "web_hook" or not body.get("address") or "pageToken" not in request.query_params:
            return JSONResponse({"error": {"code": 400, "status": "INVALID_ARGUMENT"}}, 400)
        channel = {
            "kind": "api#channel",
            "id": body["id"],
            "resourceId": "res-" + secrets.token_hex(4),
            "resourceUri": "https://www.googleapis.com/drive/v3/changes?alt=json&pageToken=1",
            "token": body.get("token"),
            "address": body["address"],
            "expiration": str(int(body["expiration"])),
        }
        self.channels[body["id"]] = channel
        return JSONResponse(channel)

    async def stop(self, request: Request) -> Response:
        refused = await self.guard(request, "channels.stop")
        if refused is not None:
            return refused
        body = json.loads(await request.body())
        channel = self.channels.pop(body.get("id"), None)
        if channel is None or channel["resourceId"] != body.get("resourceId"):
            return JSONResponse({"error": {"code": 404, "status": "NOT_FOUND"}}, 404)
        self.stopped.append(body["id"])
        return Response(status_code=204)


@dataclass
class StandIns:
    port: int = 0
    dropbox: DropboxApi = field(
        default_factory=lambda: DropboxApi(OAuthServer(access_ttl=14400, account_id=DROPBOX_ACCOUNT))
    )
    graph: GraphApi = field(default_factory=lambda: GraphApi(OAuthServer(rotate_refresh=True)))
    drive: DriveApi = field(default_factory=DriveApi)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def settings(self, connector: str) -> dict[str, Any]:
        """Source settings pointing hub at this stand-in."""
        prefix = {"dropbox": "dropbox", "microsoft-graph": "graph", "google-drive": "drive"}[connector]
        api = {"dropbox": "/2", "microsoft-graph": "/v1.0", "google-drive": "/drive/v3"}[connector]
        return {
            "fetch_changes": True,
            "oauth_client_id": CLIENT_ID,
            "oauth_client_secret": CLIENT_SECRET,
            "api_base_url": f"{self.base}/{prefix}{api}",
            "token_url": f"{self.base}/{prefix}/oauth/token",
            "authorize_url": f"{self.base}/{prefix}/oauth/authorize",
        }

    def app(self) -> Starlette:
        d, g, v = self.dropbox, self.graph, self.drive
        routes = []
        for prefix, api in (("dropbox", d), ("graph", g), ("drive", v)):
            routes += [
                Route(f"/{prefix}/oauth/authorize", api.oauth.authorize),
                Route(f"/{prefix}/oauth/token", api.oauth.token, methods=["POST"]),
            ]
        routes += [
            Route("/dropbox/2/{name:path}", d.rpc, methods=["POST"]),
            Route("/graph/v1.0/me/drive/root/delta", g.delta),
            Route("/graph/v1.0/me/drive/items/{item_id}", g.item),
            Route("/graph/v1.0/drives/{drive_id}/root/delta", g.delta),
            Route("/graph/v1.0/drives/{drive_id}/items/{item_id}", g.item),
            Route("/graph/v1.0/subscriptions", g.subscriptions_api, methods=["POST"]),
            Route("/graph/v1.0/subscriptions/{sub_id}", g.subscriptions_api, methods=["GET", "PATCH", "DELETE"]),
            Route("/drive/drive/v3/changes/startPageToken", v.start_token),
            Route("/drive/drive/v3/changes", v.changes),
            Route("/drive/drive/v3/changes/watch", v.watch, methods=["POST"]),
            Route("/drive/drive/v3/channels/stop", v.stop, methods=["POST"]),
            Route("/drive/drive/v3/files/{file_id}", v.file),
        ]
        return Starlette(routes=routes)


@contextlib.asynccontextmanager
async def serve_standins() -> AsyncIterator[StandIns]:
    standins = StandIns(port=free_port())
    standins.graph.base = f"{standins.base}/graph/v1.0"
    config = uvicorn.Config(standins.app(), host="127.0.0.1", port=standins.port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield standins
    finally:
        server.should_exit = True
        for api in (standins.dropbox, standins.graph, standins.drive):
            if api.gate is not None:
                api.gate.set()
        await task
