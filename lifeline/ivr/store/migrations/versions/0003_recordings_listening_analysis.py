"""Voicemail audio kept with the call, why listening stopped, and what each caller line meant.

calls.recording_*: the fetched recording (status, file, SHA-256, duration, attempts, last error);
calls.listening_reason: why listening was lost (e.g. a codec we cannot decode);
messages.analysis: intents and frustration probabilities of the line (JSON).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_CALL_COLUMNS = (
    ("listening_reason", sa.String(200)),
    ("recording_status", sa.String(16)),
    ("recording_saved_at", sa.Float()),
    ("recording_path", sa.String(1000)),
    ("recording_sha256", sa.String(64)),
    ("recording_duration_s", sa.Float()),
    ("recording_error", sa.String(500)),
)


def upgrade() -> None:
    """Add the columns; existing calls have no recording fetched and no attempts."""
    for name, kind in _CALL_COLUMNS:
        op.add_column("calls", sa.Column(name, kind, nullable=True))
    op.add_column("calls", sa.Column("recording_attempts", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("messages", sa.Column("analysis", sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the columns."""
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("analysis")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("recording_attempts")
        for name, _ in reversed(_CALL_COLUMNS):
            batch.drop_column(name)
