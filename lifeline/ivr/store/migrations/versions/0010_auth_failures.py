"""Failed sign-ins and bearer tokens by client address, so guessing the API token is throttled.

The console's sign-in form, the API's bearer header and /metrics took any number of wrong tokens.
Each failure now leaves a row here; an address with enough of them inside the window is answered
429 until the oldest leave it (lifeline/ivr/throttle.py). The store keeps them so every worker and instance
counts the same failures.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the table and its indexes."""
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_auth_failures_at", "auth_failures", ["at"])
    op.create_index("ix_auth_failures_client_at", "auth_failures", ["client", "at"])


def downgrade() -> None:
    """Drop the table (its indexes go with it)."""
    op.drop_table("auth_failures")
