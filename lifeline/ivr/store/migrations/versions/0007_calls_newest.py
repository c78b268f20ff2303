"""An index for the call history, newest first, and for paging it by cursor.

Every history search sorts calls by (created_at, call_control_id), newest first; `/api/calls`
now also continues after the last call of a page. Without an index each page sorted every
matching call.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from lifeline.ivr.store.migrate import create_index_online

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the index (on PostgreSQL without blocking writes to `calls` while it builds)."""
    create_index_online("ix_calls_newest", "calls", ["created_at", "call_control_id"])


def downgrade() -> None:
    """Drop the index."""
    op.drop_index("ix_calls_newest", table_name="calls")
