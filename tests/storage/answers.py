"""Provider answers as the providers document them, for the pure parsers and the committed samples."""

from __future__ import annotations

from typing import Any

from tests.storage.standins import (
    DROPBOX_ACCOUNT,
    OTHER_ACCOUNT,
    drive_change,
    dropbox_deleted,
    dropbox_file,
    dropbox_folder,
    graph_item,
)

# files/list_folder/continue (ListFolderResult): entries, cursor, has_more
DROPBOX_PAGE: dict[str, Any] = {
    "entries": [
        dropbox_folder("/Sales/Forecasts"),
        dropbox_file("/Sales/Forecasts/Q3-forecast.xlsx", "015f0a1c2", modified_by=OTHER_ACCOUNT),
        dropbox_deleted("/Sales/Archive/Budget 2023.xlsx"),
        dropbox_file("/Sales/Budget 2023.xlsx", "015f0a1c3"),  # with the deletion above: a move
        dropbox_deleted("/Sales/draft.docx"),
    ],
    "cursor": "ZtkX9_EHj3x7PMkVuFIhwKYXEpwpLwyxp9vMKomUhllil9q7eWiAu",
    "has_more": False,
}
DROPBOX_NAMES = {OTHER_ACCOUNT: "Paul Martin"}
DROPBOX_ME = (DROPBOX_ACCOUNT, "Marie Dupont")

# driveItem: delta, the last page (the doc's Example 2 shape, with the properties a real answer carries)
GRAPH_PAGE: dict[str, Any] = {
    "value": [
        graph_item("0123456789abc", "folder2", "root-id", folder=True, deleted=True),
        graph_item("123010204abac", "Q3-forecast.xlsx", "fc-id", modified="2024-07-01T09:00:20.1234567Z"),
        graph_item(
            "2353010204ddgg", "Budget.xlsx", "sales-id", created="2024-01-01T09:00:00Z", modified="2024-07-01T09:00:00Z"
        ),
        {"id": "root-id", "name": "root", "root": {}, "folder": {"childCount": 3}},
    ],
    "@odata.deltaLink": "https://graph.microsoft.com/v1.0/me/drive/root/delta?token=MzslMjM0OyUyMzE7Mz",
}
GRAPH_PATHS = {"root-id": "/", "fc-id": "/Sales/Forecasts", "sales-id": "/Sales"}

# changes.list (ChangeList), the last page
DRIVE_PAGE: dict[str, Any] = {
    "kind": "drive#changeList",
    "newStartPageToken": "4120",
    "changes": [
        drive_change("1a2b", "Q3-forecast.pdf", "fc", "2024-07-01T09:00:30.000Z", created="2024-07-01T09:00:00.000Z"),
        drive_change("3c4d", "Budget.pdf", "sales", "2024-07-01T10:00:00.000Z", created="2024-01-01T09:00:00.000Z"),
        drive_change("5e6f", "Old.pdf", "fc", "2024-07-01T11:00:00.000Z", trashed=True),
        drive_change("7a8b", "", "", "2024-07-01T12:00:00.000Z", removed=True),
        drive_change("9c0d", "Contracts", "sales", "2024-07-01T12:30:00.000Z", folder=True),
    ],
}
DRIVE_PATHS = {"fc": "/Sales/Forecasts", "sales": "/Sales"}
