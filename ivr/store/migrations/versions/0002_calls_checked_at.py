"""calls.checked_at: when a sweeper last asked Telnyx whether the leg is up.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column (NULL for existing calls: never checked yet)."""
    op.add_column("calls", sa.Column("checked_at", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("checked_at")
