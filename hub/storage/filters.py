"""Which changes a source posts: its watched folders and ignored file types. Pure; changes left out are counted."""

from __future__ import annotations

import fnmatch
from typing import Literal

from hub.storage.model import Change
from hub.storage.settings import StorageSettings, norm_folder

Reason = Literal["outside_folders", "ignored_type", "folder_updated"]


def in_folders(path: str, folders: list[str]) -> bool:
    """``path`` is one of ``folders`` (normalised) or inside one; an unknown path is inside none."""
    if not folders:
        return True
    if not path:
        return False
    p = norm_folder(path)
    return any(p == f or p.startswith(f + "/") or f == "/" for f in folders)


def ignored_type(name: str, mime_type: str, patterns: list[str]) -> bool:
    """``tmp`` / ``.tmp``: an extension; with ``/``: a MIME type pattern; with ``*`` or ``?``: a name pattern."""
    lname, lmime = name.lower(), mime_type.lower()
    for pattern in patterns:
        if "/" in pattern:
            if lmime and fnmatch.fnmatchcase(lmime, pattern):
                return True
        elif "*" in pattern or "?" in pattern or "[" in pattern:
            if fnmatch.fnmatchcase(lname, pattern):
                return True
        elif lname.endswith("." + pattern.lstrip(".")):
            return True
    return False


def judge(change: Change, cfg: StorageSettings) -> Reason | None:
    """Why a change is not posted, or None when it is."""
    item = change.item
    if item.kind == "folder" and change.action in ("updated", "changed", "shared"):
        return "folder_updated"  # a folder "changes" whenever something inside does: the inside is posted
    paths = [item.path or (f"{item.folder.rstrip('/')}/{item.name}" if item.folder and item.name else "")]
    if change.previous_path:
        paths.append(change.previous_path)
    if not any(in_folders(p, cfg.watch_folders) for p in paths):
        return "outside_folders"
    if item.kind == "file" and ignored_type(item.name, item.mime_type, cfg.ignore_file_types):
        return "ignored_type"
    return None
