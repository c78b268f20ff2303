"""Two outcomes that say more: `no_agent` (no agent took a caller) and `missed` (never answered).

Calls that ended in the menu after no agent took them used to end `completed`, like a caller who
simply finished; callers who hung up before Lifeline answered them (a hangup that overtook the
call's first webhook, or arrived while that webhook was refused) used to end `abandoned`, like a
caller who hung up while an agent rang, or `completed` when the hangup came while Lifeline was
answering. The code now records `no_agent` and `missed`; this carries calls recorded before it
over: a `completed` call with a transfer attempt was one no agent took (a transfer that connected
ends `transferred`); an `abandoned` call without one, or a `completed` one never answered
(answered_at unset: a dial-out that rang out ends `unanswered`), was a caller never answered.

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

_ATTEMPTED = "call_control_id IN (SELECT call_control_id FROM transfers)"


def upgrade() -> None:
    """Name the calls no agent took, and the callers never answered."""
    op.execute(f"UPDATE calls SET outcome = 'no_agent' WHERE outcome = 'completed' AND {_ATTEMPTED}")
    op.execute(f"UPDATE calls SET outcome = 'missed' WHERE outcome = 'abandoned' AND NOT ({_ATTEMPTED})")
    op.execute("UPDATE calls SET outcome = 'missed' WHERE outcome = 'completed' AND answered_at IS NULL")


def downgrade() -> None:
    """Back to the outcomes the older code reads."""
    op.execute("UPDATE calls SET outcome = 'completed' WHERE outcome = 'no_agent'")
    # Which `missed` were `completed` (hung up while answering) is not kept: `abandoned` it is.
    op.execute("UPDATE calls SET outcome = 'abandoned' WHERE outcome = 'missed'")
