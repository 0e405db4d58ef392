"""storage providers: a source's OAuth2 credentials, its change cursors, the provider subscription hub keeps alive

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_credentials",
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("grant", sa.String(32), nullable=False),
        sa.Column("token_enc", sa.Text(), nullable=True),
        sa.Column("generation", sa.String(64), nullable=False),
        sa.Column("account", sa.String(300), nullable=True),
        sa.Column("account_name", sa.String(300), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "storage_cursors",
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("account", sa.String(300), primary_key=True),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("requested", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("lease_id", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failure", sa.String(16), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.Float(), nullable=True),
        sa.Column("last_fetch_at", sa.Float(), nullable=True),
        sa.Column("last_notification_id", sa.String(64), nullable=True),
        sa.Column("changes_posted", sa.Integer(), nullable=False),
        sa.Column("changes_filtered", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_storage_cursors_due", "storage_cursors", ["next_attempt_at"])
    op.create_table(
        "storage_subscriptions",
        sa.Column("source_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("remote_id", sa.String(300), nullable=True),
        sa.Column("resource_id", sa.String(300), nullable=True),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.Float(), nullable=True),
        sa.Column("renewed_at", sa.Float(), nullable=True),
        sa.Column("reauthorize", sa.Boolean(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=True),
        sa.Column("next_check_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.Float(), nullable=True),
        sa.Column("lease_id", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_storage_subscriptions_due", "storage_subscriptions", ["next_check_at"])


def downgrade() -> None:
    op.drop_index("ix_storage_subscriptions_due", "storage_subscriptions")
    op.drop_table("storage_subscriptions")
    op.drop_index("ix_storage_cursors_due", "storage_cursors")
    op.drop_table("storage_cursors")
    op.drop_table("source_credentials")
