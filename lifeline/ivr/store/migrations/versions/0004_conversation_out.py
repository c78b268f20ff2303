"""The conversation going out: the feed, webhook deliveries and their attempts, summaries.

feed: every event of every call in commit order (SSE, webhooks out, transcripts);
deliveries / delivery_attempts / delivery_cursors: the durable outbox of webhooks out;
summaries: one post-call summary per call, with its email's status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables (empty: nothing went out before this revision)."""
    op.create_table('deliveries',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('feed_id', sa.Integer(), nullable=False),
        sa.Column('url', sa.String(length=1000), nullable=False),
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_at', sa.Float(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('delivered_at', sa.Float(), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_deliveries_due', 'deliveries', ['status', 'next_at'], unique=False)
    op.create_index('ix_deliveries_order', 'deliveries', ['url', 'call_control_id', 'feed_id'], unique=False)
    op.create_index('ux_deliveries_feed_url', 'deliveries', ['feed_id', 'url'], unique=True)
    op.create_table('delivery_attempts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('delivery_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.Float(), nullable=False),
        sa.Column('http_status', sa.Integer(), nullable=True),
        sa.Column('error', sa.String(length=500), nullable=True),
        sa.Column('duration_ms', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_delivery_attempts_delivery_id'), 'delivery_attempts', ['delivery_id'],
                    unique=False)
    op.create_table('delivery_cursors',
        sa.Column('url', sa.String(length=1000), nullable=False),
        sa.Column('feed_id', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('url')
    )
    op.create_table('feed',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_feed_call_control_id'), 'feed', ['call_control_id'], unique=False)
    op.create_index('ix_feed_call_kind', 'feed', ['call_control_id', 'kind'], unique=False)
    op.create_index('ix_feed_kind_id', 'feed', ['kind', 'id'], unique=False)
    op.create_table('summaries',
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('email_to', sa.String(length=1000), nullable=True),
        sa.Column('email_status', sa.String(length=16), nullable=True),
        sa.Column('email_attempts', sa.Integer(), nullable=False),
        sa.Column('email_next_at', sa.Float(), nullable=True),
        sa.Column('email_error', sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint('call_control_id')
    )
    op.create_index('ix_summaries_email', 'summaries', ['email_status', 'email_next_at'], unique=False)


def downgrade() -> None:
    """Drop the tables."""
    op.drop_index('ix_summaries_email', table_name='summaries')
    op.drop_table('summaries')
    op.drop_index('ix_feed_kind_id', table_name='feed')
    op.drop_index('ix_feed_call_kind', table_name='feed')
    op.drop_index(op.f('ix_feed_call_control_id'), table_name='feed')
    op.drop_table('feed')
    op.drop_table('delivery_cursors')
    op.drop_index(op.f('ix_delivery_attempts_delivery_id'), table_name='delivery_attempts')
    op.drop_table('delivery_attempts')
    op.drop_index('ux_deliveries_feed_url', table_name='deliveries')
    op.drop_index('ix_deliveries_order', table_name='deliveries')
    op.drop_index('ix_deliveries_due', table_name='deliveries')
    op.drop_table('deliveries')
