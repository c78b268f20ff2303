"""An index for retention: ended calls, oldest end first.

The retention purge (`LIFELINE_RETENTION_DAYS`, `flask retention purge`) walks the calls that
ended before its cutoff in (ended_at, call_control_id) order, a batch at a time. Without an index
each batch read every call.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from ivr.store.migrate import create_index_online

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the index (on PostgreSQL without blocking writes to `calls` while it builds)."""
    create_index_online("ix_calls_ended", "calls", ["ended_at", "call_control_id"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_calls_ended", table_name="calls")
