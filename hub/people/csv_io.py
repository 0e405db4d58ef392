"""People as CSV: export the directory, plan an import against it (what is created, updated, refused).

Columns: ``id`` (optional; matches an existing person), ``display_name``, and one column per identity
kind (``email``, ``github``, ``jira``, ``slack``…; see ``KINDS``). An empty cell leaves an identity as it
is. A row matches the person it names by id, else the one holding any of its identities; a row whose
identities belong to two people, or to someone else than the person it names, is refused with the reason.
Cells that a spreadsheet would run as a formula are written with a leading ``'`` (and read back without).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from hub.people.directory import KINDS, Directory, normalise

COLUMNS = ["id", "display_name", *KINDS]
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


class CsvError(Exception):
    """The file as a whole cannot be imported (an unknown column, no display_name column)."""


@dataclass
class Change:
    person_id: str | None  # None: a new person
    display_name: str
    identities: dict[str, str]  # what to set (only what the row gives)
    line: int


@dataclass
class ImportPlan:
    changes: list[Change] = field(default_factory=list)
    unchanged: int = 0
    refused: list[dict[str, object]] = field(default_factory=list)


def _cell_out(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA) else value


def _cell_in(value: str) -> str:
    value = value.strip()
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA) else value


def export_csv(directory: Directory) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for person in sorted(directory.people(), key=lambda p: (p.name.lower(), p.id)):
        row = [person.id, person.name, *(person.identities.get(k, "") for k in KINDS)]
        writer.writerow([_cell_out(c) for c in row])
    return out.getvalue()


def _valid(kind: str, value: str) -> str | None:
    if kind == "email" and ("@" not in value or " " in value or len(value) > 320):
        return f"{value!r} is not an email address"
    if len(value) > 320:
        return f"{kind} is longer than 320 characters"
    return None


def plan_import(text: str, directory: Directory) -> ImportPlan:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise CsvError(f"unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(COLUMNS)}")
    if "display_name" not in header:
        raise CsvError("the file needs a display_name column")
    reader.fieldnames = header
    plan = ImportPlan()
    held: dict[tuple[str, str], str] = {}  # identity → person id, as the import goes on
    for person in directory.people():
        for kind, value in person.identities.items():
            held[(kind, normalise(kind, value))] = person.id
    new_ids = 0
    pending: dict[str, Change] = {}
    for line, row in enumerate(reader, start=2):
        cells = {k: _cell_in(v or "") for k, v in row.items() if k is not None}
        given = {k: normalise(k, cells[k]) for k in KINDS if cells.get(k)}
        problem = next((p for k, v in given.items() if (p := _valid(k, v))), None)
        named = cells.get("id") or None
        if named and directory.get(named) is None:
            problem = problem or f"no person with id {named!r}"
        holders = {held[(k, v)] for k, v in given.items() if (k, v) in held}
        if named:
            others = holders - {named}
            if others:
                problem = problem or f"an identity of this row belongs to {sorted(others)[0]}"
        elif len(holders) > 1:
            who = ", ".join(sorted(f"the person of line {pending[h].line}" if h in pending else h for h in holders))
            problem = problem or f"the identities of this row belong to different people: {who}"
        target = named or (next(iter(holders)) if holders else None)
        name = cells.get("display_name", "")
        if target is None and not name:
            problem = problem or "display_name is empty"
        if problem:
            plan.refused.append({"line": line, "reason": problem})
            continue
        if target is None:
            new_ids += 1
            target_key = f"new:{new_ids}"
            pending[target_key] = Change(None, name, given, line)
            plan.changes.append(pending[target_key])
        elif target in pending:  # a later row about someone this file creates
            target_key, change = target, pending[target]
            if (not name or name == change.display_name) and given.items() <= change.identities.items():
                plan.unchanged += 1
            change.identities.update(given)
            change.display_name = name or change.display_name
        else:
            target_key = target
            current = directory.get(target)
            same_name = not name or (current is not None and current.name == name)
            same_ids = current is not None and all(current.identities.get(k) == v for k, v in given.items())
            if same_name and same_ids:
                plan.unchanged += 1
            else:
                plan.changes.append(Change(target, name or (current.name if current else ""), given, line))
        for k, v in given.items():
            held[(k, v)] = target_key
    return plan
