"""When a call's recording was last tried, so the monitor's retries back off from that attempt.

The retry schedule used to count from when the recording was saved. After a pause in the sweeps
(a restart, a long outage) every attempt behind that schedule ran at once, one per sweep; it now
waits out each back-off from the last attempt. Calls tried before this column keep the old
schedule until their next attempt sets it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the column (nullable, no default: adding it rewrites no rows)."""
    op.add_column("calls", sa.Column("recording_attempted_at", sa.Float(), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recording_attempted_at")
