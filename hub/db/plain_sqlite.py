"""Small pieces the embedded default's plain sqlite3 code shares (hub/ingest/sqlite_writer.py,
hub/delivery/sqlite_path.py): one write transaction, and ``IN`` lists kept under SQLite's parameter limit."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

IN_CHUNK = 500  # values per IN list: stays under SQLite's bound-parameter limit (999 before SQLite 3.32)

Execute = Callable[[str, Sequence[object]], Iterable[Any]]


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One transaction that takes the write lock first (BEGIN IMMEDIATE): what it reads stays true until
    it commits, against any other writer; rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def marks(n: int) -> str:
    """``?, ?, …``: the placeholders of an n-value list."""
    return ", ".join("?" * n)


def select_in(execute: Execute, sql: str, values: Sequence[object], head: Sequence[object] = ()) -> Iterator[Any]:
    """The rows of ``sql`` for every value: its ``{}`` is an IN list's placeholders, filled a chunk of
    ``values`` at a time, each chunk's parameters after ``head``."""
    for start in range(0, len(values), IN_CHUNK):
        part = values[start : start + IN_CHUNK]
        yield from execute(sql.format(marks(len(part))), [*head, *part])


def by_first(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Pairs grouped by their first element (one query per source, per target…)."""
    groups: dict[str, list[str]] = {}
    for first, second in pairs:
        groups.setdefault(first, []).append(second)
    return groups
