"""sources keep their previous secret for an overlap window (secret rotation)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 08:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("sources", sa.Column("previous_secret_enc", sa.Text(), nullable=True))
    op.add_column("sources", sa.Column("previous_secret_until", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sources") as batch:
        batch.drop_column("previous_secret_until")
        batch.drop_column("previous_secret_enc")
