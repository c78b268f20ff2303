"""Calls that ended in the menu after no agent took them get the outcome `no_agent`.

Such calls used to end `completed`, like a caller who simply finished in the menu, so the history,
the API and the summaries could not tell a missed escalation from a call that needed none. The
code now records `no_agent`; this carries calls recorded before it over to the same outcome: a
call that ended `completed` and has a transfer attempt was one no agent took (a transfer that
connected ends `transferred`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_WITH_ATTEMPT = "call_control_id IN (SELECT call_control_id FROM transfers)"


def upgrade() -> None:
    """Name the calls no agent took."""
    op.execute(f"UPDATE calls SET outcome = 'no_agent' WHERE outcome = 'completed' AND {_WITH_ATTEMPT}")


def downgrade() -> None:
    """Back to `completed`, which the older code reads."""
    op.execute("UPDATE calls SET outcome = 'completed' WHERE outcome = 'no_agent'")
