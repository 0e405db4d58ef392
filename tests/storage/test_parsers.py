"""The pure half of the providers: documented answers read into changes; filters; error codes; settings; and
the committed samples of fetched events (tests/expected/<connector>/fetched.json, HUB_UPDATE_EXPECTED=1
rewrites them), rendered by the default mappings."""

from __future__ import annotations

import json
import os
from typing import Any

import httpx
import pytest

from hub.connectors.catalogue import builtin_catalogue
from hub.mapping.catalogue import builtin_mappings
from hub.mapping.samples import Sample, entry, render_default
from hub.paths import samples_dir
from hub.storage.client import ProviderClient, ProviderError, error_code
from hub.storage.filters import ignored_type, in_folders, judge
from hub.storage.model import Actor, Change, Item, Page
from hub.storage.providers.base import FeedContext, parse_time
from hub.storage.providers.dropbox import parse_list_folder
from hub.storage.providers.google_drive import parse_changes
from hub.storage.providers.graph import parse_delta, root_relative
from hub.storage.settings import StorageSettings, parse_settings
from hub.storage.store import fetched_event
from tests.storage.answers import (
    DRIVE_PAGE,
    DRIVE_PATHS,
    DROPBOX_ME,
    DROPBOX_NAMES,
    DROPBOX_PAGE,
    GRAPH_PAGE,
    GRAPH_PATHS,
)

UPDATE = os.environ.get("HUB_UPDATE_EXPECTED") == "1"


def dropbox_page() -> Page:
    return parse_list_folder(DROPBOX_PAGE, "c-0", FeedContext(*DROPBOX_ME), DROPBOX_NAMES)


def test_dropbox_entries_become_changes_and_a_deletion_with_a_same_name_file_is_a_move() -> None:
    page = dropbox_page()
    assert (page.cursor, page.more) == (DROPBOX_PAGE["cursor"], False)
    got = [(c.event_type, c.item.path, c.previous_path, c.actor.name) for c in page.changes]
    assert got == [
        ("folder.added", "/Sales/Forecasts", "", "Marie Dupont"),
        ("file.changed", "/Sales/Forecasts/Q3-forecast.xlsx", "", "Paul Martin"),
        ("file.moved", "/Sales/Budget 2023.xlsx", "/Sales/Archive/Budget 2023.xlsx", "Marie Dupont"),
        ("file.deleted", "/Sales/draft.docx", "", ""),
    ]
    q3 = page.changes[1].item
    assert (q3.size, q3.folder, q3.url) == (
        48213,
        "/Sales/Forecasts",
        "https://www.dropbox.com/home/Sales/Forecasts?preview=Q3-forecast.xlsx",
    )


def test_a_dropbox_answer_without_a_cursor_is_refused() -> None:
    with pytest.raises(ProviderError, match="no cursor"):
        parse_list_folder({"entries": [], "has_more": False}, "c", FeedContext(), {})


def test_graph_delta_items_become_changes() -> None:
    page = parse_delta(GRAPH_PAGE, GRAPH_PATHS)
    assert (page.cursor, page.more, page.skipped) == (GRAPH_PAGE["@odata.deltaLink"], False, 1)
    got = [(c.event_type, c.item.name, c.item.folder) for c in page.changes]
    assert got == [
        ("folder.deleted", "", "/"),  # OneDrive for Business omits the name of a deleted item
        ("file.added", "Q3-forecast.xlsx", "/Sales/Forecasts"),
        ("file.updated", "Budget.xlsx", "/Sales"),
    ]
    with_next = parse_delta({"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/x?token=n"}, {})
    assert with_next.more and with_next.cursor.endswith("token=n")
    with pytest.raises(ProviderError):
        parse_delta({"value": []}, {})


def test_graph_paths_and_times() -> None:
    assert root_relative("/drive/root:/Sales%20Team/Forecasts") == "/Sales Team/Forecasts"
    assert root_relative("/drives/b!x/root:") == "/"
    assert root_relative("/drive/items/abc") == ""
    assert parse_time("2024-07-01T09:00:20.1234567Z") == pytest.approx(1719824420.123456)
    assert parse_time("not a time") is None


def test_drive_changes_become_changes() -> None:
    page = parse_changes(DRIVE_PAGE, DRIVE_PATHS)
    assert (page.cursor, page.more) == ("4120", False)
    got = [(c.event_type, c.item.path, c.trashed) for c in page.changes]
    assert got == [
        ("file.added", "/Sales/Forecasts/Q3-forecast.pdf", False),
        ("file.updated", "/Sales/Budget.pdf", False),
        ("file.deleted", "/Sales/Forecasts/Old.pdf", True),
        ("file.deleted", "", False),
        ("folder.added", "/Sales/Contracts", False),
    ]
    assert page.changes[0].item.size == 48213 and page.changes[0].actor.email == "marie@example.com"
    assert parse_changes({"nextPageToken": "7", "changes": []}, {}).more


def _change(path: str, kind: str = "file", action: str = "added", mime: str = "") -> Change:
    folder, _, name = path.rpartition("/")
    return Change(action, Item(kind, "x", name, path, folder or "/", mime_type=mime), Actor())  # type: ignore[arg-type]


def test_filters() -> None:
    cfg = StorageSettings(watch_folders=["Sales/Forecasts/"], ignore_file_types=[".TMP", "~$*", "image/*"])
    assert cfg.watch_folders == ["/sales/forecasts"]
    assert judge(_change("/Sales/Forecasts/Q3.xlsx"), cfg) is None
    assert judge(_change("/Sales/Forecasts"), cfg) is None
    assert judge(_change("/Sales/Forecasts2/Q3.xlsx"), cfg) == "outside_folders"
    assert judge(_change("/Sales/Forecasts/x.tmp"), cfg) == "ignored_type"
    assert judge(_change("/Sales/Forecasts/~$Q3.xlsx"), cfg) == "ignored_type"
    assert judge(_change("/Sales/Forecasts/photo", mime="image/png"), cfg) == "ignored_type"
    assert judge(_change("/Sales/Forecasts/Sub", kind="folder", action="updated"), cfg) == "folder_updated"
    moved_out = Change("moved", Item("file", "x", "a", "/HR/a", "/HR"), Actor(), previous_path="/Sales/Forecasts/a")
    assert judge(moved_out, cfg) is None  # it left a watched folder: posted
    assert in_folders("/anything", []) and not in_folders("", ["/sales"])
    assert not ignored_type("report.tmp.pdf", "", ["tmp"])


def test_error_codes_of_each_provider() -> None:
    assert error_code(b'{"error_summary": "reset/..", "error": {".tag": "reset"}}') == "reset/.."
    assert error_code(b'{"error": {"code": "resyncRequired", "message": "x"}}') == "resyncRequired"
    assert error_code(b'{"error": {"code": 404, "status": "NOT_FOUND", "message": "File not found"}}') == "NOT_FOUND"
    assert error_code(b'{"error": "invalid_grant"}') == "invalid_grant"
    assert error_code(b"Error in call to API function") == ""


async def test_a_link_to_another_origin_is_never_followed_with_the_token() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request may leave")

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        api = ProviderClient(http, None, {"https://graph.microsoft.com"}, 5.0)
        with pytest.raises(ProviderError, match="not the provider's API"):
            await api.call("GET", "https://evil.example.com/v1.0/me/drive/root/delta?token=x", "delta")


def test_bad_settings_are_named() -> None:
    with pytest.raises(ValueError, match=r"settings\.api_base_url"):
        parse_settings({"api_base_url": "ftp://x"})
    with pytest.raises(ValueError, match=r"settings\.drive"):
        parse_settings({"drive": "me/drive"})
    with pytest.raises(ValueError, match=r"settings\.subscription_hours"):
        parse_settings({"subscription_hours": 0})
    with pytest.raises(ValueError, match=r"settings\.watch_folders"):
        parse_settings({"watch_folders": ["x"] * 51})


# --- committed samples: what the default mappings make of fetched events -----------------------------------

PAGES = {
    "dropbox": lambda: (DROPBOX_ME[0], dropbox_page()),
    "microsoft-graph": lambda: ("", parse_delta(GRAPH_PAGE, GRAPH_PATHS)),
    "google-drive": lambda: ("", parse_changes(DRIVE_PAGE, DRIVE_PATHS)),
}


def sample_entries(connector: str) -> list[Any]:
    account, page = PAGES[connector]()
    catalogue, mappings = builtin_catalogue(), builtin_mappings()
    out = []
    for i, change in enumerate(page.changes):
        ev = fetched_event(connector, account, change, {"notification_event_id": "evt_sample", "api": "sample"})
        sample = Sample(connector, "fetched", i, ev.type, ev.subject, ev.payload, False, None)
        out.append(entry(ev.type, ev.subject, ev.payload, False, render_default(mappings, catalogue, sample)))
    return out


@pytest.mark.parametrize("connector", sorted(PAGES))
def test_fetched_events_render_the_committed_samples(connector: str) -> None:
    path = samples_dir() / connector / "fetched.json"
    entries = sample_entries(connector)
    if UPDATE:
        path.write_text(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
    assert path.is_file(), f"run HUB_UPDATE_EXPECTED=1 pytest {__file__}"
    assert entries == json.loads(path.read_text())
