"""What a provider's change feed says, normalised: one :class:`Change` per changed item, pages of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["added", "updated", "deleted", "moved", "shared", "changed"]
Kind = Literal["file", "folder"]


@dataclass(frozen=True)
class Item:
    """The file or folder a change is about. Empty strings (and ``size`` None) where the provider does not say."""

    kind: Kind
    id: str
    name: str = ""
    path: str = ""  # "/Sales/Forecasts/Q3-forecast.xlsx"
    folder: str = ""  # "/Sales/Forecasts"
    url: str = ""
    size: int | None = None
    mime_type: str = ""
    modified_at: str = ""  # as the provider wrote it (ISO 8601)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "folder": self.folder,
            "url": self.url,
            "size": self.size,
            "mime_type": self.mime_type,
            "modified_at": self.modified_at,
        }


@dataclass(frozen=True)
class Actor:
    name: str = ""
    email: str = ""
    id: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "id": self.id}


@dataclass(frozen=True)
class Change:
    """One changed item. ``version`` tells two changes of one item apart (a revision, an eTag, the change's
    time): with the item's id it makes the event's dedup key, so a page read twice stores its events once."""

    action: Action
    item: Item
    actor: Actor = Actor()
    version: str = ""
    previous_path: str = ""  # a move, when the provider tells where from
    trashed: bool = False  # deleted to the trash (restorable)

    @property
    def event_type(self) -> str:
        return f"{self.item.kind}.{self.action}"


@dataclass(frozen=True)
class Page:
    """One answer of a change feed: its changes, the cursor to continue from, and whether more is ready now."""

    changes: list[Change]
    cursor: str
    more: bool
    skipped: int = 0  # entries that are no item's change (a drive's own metadata, the root folder)
    names: dict[str, str] = field(default_factory=dict)  # account id → display name, when looked up


def change_payload(change: Change, account: str, via: dict[str, Any]) -> dict[str, Any]:
    """The stored payload of a fetched event: what mappings read as ``payload`` (the view says the same)."""
    out: dict[str, Any] = {
        "action": change.action,
        "item": change.item.as_dict(),
        "actor": change.actor.as_dict(),
        "account": account,
        "via": via,
    }
    if change.previous_path:
        out["previous_path"] = change.previous_path
    if change.trashed:
        out["trashed"] = True
    return out
