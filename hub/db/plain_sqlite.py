"""Small pieces the embedded default's plain sqlite3 code shares (hub/ingest/sqlite_writer.py,
hub/delivery/sqlite_path.py): one write transaction, and ``IN`` lists kept under SQLite's parameter limit."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

IN_CHUNK = 500  # values per IN list: stays under SQLite's bound-parameter limit (999 before SQLite 3.32)
BUSY_LIMIT = 10.0  # seconds a writer waits for SQLite's write lock before giving up
BUSY_FIRST, BUSY_MOST = 0.00005, 0.002  # its first wait and its longest, doubling in between

Execute = Callable[[str, Sequence[object]], Iterable[Any]]


def writer_connection(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection for one of the hot writers (:func:`immediate` waits for the lock itself).

    ``synchronous``: ``FULL`` waits for the WAL's fsync at every commit (what acknowledges a webhook);
    ``NORMAL`` does not: a commit survives a crash of the process, but the last ones may be undone by a
    power cut, until the next fsync (any FULL commit, or a checkpoint)."""
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(synchronous)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=0")
    return conn


def patiently(conn: sqlite3.Connection, sql: str) -> None:
    """``sql`` (BEGIN IMMEDIATE, COMMIT), retried while another connection holds the write lock.

    SQLite's own busy handler sleeps 1, 2, 5, 10… ms between tries; two processes writing in turn
    (`hub serve`'s API and delivery processes) hold the lock well under a millisecond, so the waits
    here start at 50 µs."""
    delay, deadline = BUSY_FIRST, 0.0
    while True:
        try:
            conn.execute(sql)
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            deadline = deadline or now + BUSY_LIMIT
            if now > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, BUSY_MOST)


@contextlib.contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One transaction that takes the write lock first (BEGIN IMMEDIATE): what it reads stays true until
    it commits, against any other writer; rolled back on any error."""
    patiently(conn, "BEGIN IMMEDIATE")
    try:
        yield
        patiently(conn, "COMMIT")
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
    """Pairs grouped by their first element (one query per source, per target…; the Postgres ingest
    store groups its dedup lookups with it too)."""
    groups: dict[str, list[str]] = {}
    for first, second in pairs:
        groups.setdefault(first, []).append(second)
    return groups
