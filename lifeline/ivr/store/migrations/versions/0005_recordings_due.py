"""An index for the monitor's recording retry: calls whose voicemail is still to fetch.

The retry used to look among the 200 newest calls only, so on a busy line an older call's
recording was never retried or marked expired; it now asks for every pending or failed one,
oldest saved first, and this index keeps that a lookup rather than a scan of all calls.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

from lifeline.ivr.store.migrate import create_index_online

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the index (on PostgreSQL without blocking writes to `calls` while it builds)."""
    create_index_online("ix_calls_recording_due", "calls", ["recording_status", "recording_saved_at"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_calls_recording_due", table_name="calls")
