"""Console sessions that were signed out, so a copy of their cookie opens nothing.

Sessions are signed cookies; signing out used to clear only the browser's own copy, and a copy
taken earlier stayed valid for the rest of its 8 hours. Each sign-out now leaves a row here until
the session would have ended anyway.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the table."""
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("revoked_sessions")
