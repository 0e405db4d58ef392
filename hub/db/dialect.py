"""The few statements that differ between SQLite and Postgres."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_ignoring_conflicts(table: sa.Table, dialect: str, *index_elements: str) -> Any:
    """INSERT … ON CONFLICT (cols) DO NOTHING for either database."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
    return sqlite.insert(table).on_conflict_do_nothing(index_elements=list(index_elements))
