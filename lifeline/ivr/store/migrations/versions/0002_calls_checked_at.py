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
    """Add the column (NULL for existing calls: never checked yet), unless it is there already."""
    # The last release before migrations made it itself; a database of that release that an
    # earlier version of the adoption stamped at 0001 is left there and must upgrade too.
    if "checked_at" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("calls")}:
        op.add_column("calls", sa.Column("checked_at", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("checked_at")
