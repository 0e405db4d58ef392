"""events keep their own payload (batch items, form fields); sources keep secret settings sealed

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("payload", sa.Text(), nullable=True))
    op.add_column("sources", sa.Column("secret_settings_enc", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "secret_settings_enc")
    op.drop_column("events", "payload")
