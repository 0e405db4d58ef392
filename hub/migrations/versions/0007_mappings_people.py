"""mappings managed over the API, with versions; deliveries record the mapping version that rendered them;
a directory of people with their identities across tools

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mappings",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("connector", sa.String(100), nullable=True),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "mapping_versions",
        sa.Column("mapping_id", sa.String(100), sa.ForeignKey("mappings.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=True),
    )
    op.add_column("deliveries", sa.Column("mapping_version", sa.String(120), nullable=True))
    op.create_table(
        "people",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "person_identities",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("value", sa.String(320), primary_key=True),
        sa.Column("person_id", sa.String(64), sa.ForeignKey("people.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("ix_person_identities_person", "person_identities", ["person_id"])


def downgrade() -> None:
    op.drop_table("person_identities")
    op.drop_table("people")
    op.drop_column("deliveries", "mapping_version")
    op.drop_table("mapping_versions")
    op.drop_table("mappings")
