"""Retention: an index on when calls ended, the counts of what it removed, its recordings to remove.

The retention purge (`LIFELINE_RETENTION_DAYS`, `flask retention purge`) walks the calls that
ended before its cutoff in (ended_at, call_control_id) order, a batch at a time; without an index
each batch read every call. Once the calls are done it removes old webhook events that name no
recorded call, found by their receive time (the second index). What it removes is added to
`purged_counts` first (calls by outcome, decisions by rule, transfers by status, refused
commands), so the counters /metrics reads from the store never go down when old calls go; their
recordings go to `purged_files`, in the same transaction, until their files are removed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lifeline.ivr.store.migrate import create_index_online

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the tables, and the index (on PostgreSQL without blocking writes to `calls` while it builds)."""
    op.create_table(
        "purged_counts",
        sa.Column("figure", sa.String(32), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    op.create_table(
        "purged_files",
        sa.Column("location", sa.String(1000), primary_key=True),
        sa.Column("purged_at", sa.Float, nullable=False),
    )
    create_index_online("ix_calls_ended", "calls", ["ended_at", "call_control_id"])
    create_index_online("ix_webhook_events_received", "webhook_events", ["received_at"])


def downgrade() -> None:
    """Drop the index and the tables."""
    op.drop_index("ix_webhook_events_received", table_name="webhook_events")
    op.drop_index("ix_calls_ended", table_name="calls")
    op.drop_table("purged_files")
    op.drop_table("purged_counts")
