"""thread anchors, the remote post of a delivery, why a target was disabled, outbound OAuth2 tokens

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "thread_anchors",
        sa.Column("target_id", sa.String(length=64), nullable=False),
        sa.Column("thread_hash", sa.String(length=64), nullable=False),
        sa.Column("thread_key", sa.Text(), nullable=False),
        sa.Column("remote_id", sa.String(length=300), nullable=True),
        sa.Column("remote_url", sa.Text(), nullable=True),
        sa.Column("delivery_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("target_id", "thread_hash"),
    )
    op.create_table(
        "oauth_tokens",
        sa.Column("credential", sa.String(length=64), nullable=False),
        sa.Column("token_enc", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("credential"),
    )
    op.add_column("deliveries", sa.Column("remote_id", sa.String(length=300), nullable=True))
    op.add_column("deliveries", sa.Column("remote_url", sa.Text(), nullable=True))
    op.add_column("targets", sa.Column("disabled_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("targets") as batch:
        batch.drop_column("disabled_reason")
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("remote_url")
        batch.drop_column("remote_id")
    op.drop_table("oauth_tokens")
    op.drop_table("thread_anchors")
