"""calm channels: routes coalesce, keep business hours or post a daily digest, or message the person a
post mentions directly; folded deliveries name their carrier

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routes", sa.Column("coalesce_seconds", sa.Float(), nullable=True))
    op.add_column("routes", sa.Column("quiet_hours", sa.JSON(), nullable=True))
    op.add_column("routes", sa.Column("digest", sa.JSON(), nullable=True))
    op.add_column("routes", sa.Column("notify_direct", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.add_column("deliveries", sa.Column("folded_into", sa.String(64), nullable=True))
    op.create_index("ix_deliveries_folded_into", "deliveries", ["folded_into"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_folded_into", "deliveries")
    op.drop_column("deliveries", "folded_into")
    op.drop_column("routes", "notify_direct")
    op.drop_column("routes", "digest")
    op.drop_column("routes", "quiet_hours")
    op.drop_column("routes", "coalesce_seconds")
