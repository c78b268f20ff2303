"""The schema as it was before migrations (what `create_all` made): the baseline.

A database made by an older Lifeline is stamped at this revision and upgraded from here.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create every table of the original schema."""
    op.create_table('calls',
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('call_session_id', sa.String(length=255), nullable=True),
        sa.Column('call_leg_id', sa.String(length=255), nullable=True),
        sa.Column('from_number', sa.String(length=255), nullable=True),
        sa.Column('to_number', sa.String(length=255), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('menu', sa.String(length=64), nullable=True),
        sa.Column('retries', sa.Integer(), nullable=False),
        sa.Column('pending', sa.String(length=32), nullable=True),
        sa.Column('outcome', sa.String(length=32), nullable=True),
        sa.Column('hangup_cause', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.Column('answered_at', sa.Float(), nullable=True),
        sa.Column('ended_at', sa.Float(), nullable=True),
        sa.Column('swept_at', sa.Float(), nullable=True),
        sa.Column('listening', sa.String(length=16), nullable=True),
        sa.Column('recording_url', sa.String(length=1000), nullable=True),
        sa.Column('engine_state', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('call_control_id')
    )
    op.create_index(op.f('ix_calls_call_session_id'), 'calls', ['call_session_id'], unique=False)
    op.create_index(op.f('ix_calls_status'), 'calls', ['status'], unique=False)
    op.create_table('claims',
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('action', sa.String(length=128), nullable=False),
        sa.Column('claimed_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('call_control_id', 'action')
    )
    op.create_table('commands',
        sa.Column('command_id', sa.String(length=64), nullable=False),
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('params', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.String(length=500), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('command_id')
    )
    op.create_index(op.f('ix_commands_call_control_id'), 'commands', ['call_control_id'], unique=False)
    op.create_index('ix_commands_status_updated', 'commands', ['status', 'updated_at'], unique=False)
    op.create_table('decisions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('rule', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=False),
        sa.Column('evidence', sa.Text(), nullable=False),
        sa.Column('decided_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_decisions_call_control_id'), 'decisions', ['call_control_id'], unique=False)
    op.create_table('messages',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('engine', sa.String(length=16), nullable=False),
        sa.Column('source_id', sa.String(length=255), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('confidence', sa.Float(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('label', sa.String(length=16), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_messages_call_control_id'), 'messages', ['call_control_id'], unique=False)
    op.create_index('ux_messages_source', 'messages', ['call_control_id', 'source_id'], unique=True)
    op.create_table('transfers',
        sa.Column('call_control_id', sa.String(length=255), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('to_number', sa.String(length=255), nullable=False),
        sa.Column('command_id', sa.String(length=64), nullable=False),
        sa.Column('reason', sa.String(length=255), nullable=False),
        sa.Column('rule', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('agent_call_control_id', sa.String(length=255), nullable=True),
        sa.Column('hangup_cause', sa.String(length=64), nullable=True),
        sa.Column('requested_at', sa.Float(), nullable=False),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('call_control_id', 'attempt')
    )
    op.create_index(op.f('ix_transfers_agent_call_control_id'), 'transfers', ['agent_call_control_id'],
                    unique=False)
    op.create_table('webhook_events',
        sa.Column('id', sa.String(length=255), nullable=False),
        sa.Column('event_type', sa.String(length=100), nullable=False),
        sa.Column('call_control_id', sa.String(length=255), nullable=True),
        sa.Column('occurred_at', sa.String(length=64), nullable=True),
        sa.Column('received_at', sa.Float(), nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_webhook_events_call_control_id'), 'webhook_events', ['call_control_id'],
                    unique=False)


def downgrade() -> None:
    """Drop every table."""
    op.drop_index(op.f('ix_webhook_events_call_control_id'), table_name='webhook_events')
    op.drop_table('webhook_events')
    op.drop_index(op.f('ix_transfers_agent_call_control_id'), table_name='transfers')
    op.drop_table('transfers')
    op.drop_index('ux_messages_source', table_name='messages')
    op.drop_index(op.f('ix_messages_call_control_id'), table_name='messages')
    op.drop_table('messages')
    op.drop_index(op.f('ix_decisions_call_control_id'), table_name='decisions')
    op.drop_table('decisions')
    op.drop_index('ix_commands_status_updated', table_name='commands')
    op.drop_index(op.f('ix_commands_call_control_id'), table_name='commands')
    op.drop_table('commands')
    op.drop_table('claims')
    op.drop_index(op.f('ix_calls_status'), table_name='calls')
    op.drop_index(op.f('ix_calls_call_session_id'), table_name='calls')
    op.drop_table('calls')
