"""The transfer executor: one winner per decision, one `transfer` per agent, outcomes recorded."""

from __future__ import annotations

import logging
import time

from lifeline.ivr.context import CallContext
from lifeline.ivr.events import encode_client_state
from lifeline.ivr.store import CallRecord, CallStatus, TransferRecord, TransferStatus

from .rules import Decision

log = logging.getLogger(__name__)
ESCALATION = "transfer"


class TransferExecutor:
    """Puts a caller through to the agents in order, exactly once per decision."""

    def __init__(self, agents: tuple[str, ...], timeout_s: int, handoff: str | None) -> None:
        self._agents = agents
        self._timeout_s = timeout_s
        self._handoff = handoff

    def request(self, ctx: CallContext, call: CallRecord, decision: Decision) -> bool:
        """Act on a decision unless one was already acted on for this call; True if this one won.

        Whether the call's status allows a transfer is the state machine's question, asked
        before this; the caller of this method moves the call to `transferring` when it wins.
        """
        if not ctx.tx.claim(call.call_control_id, ESCALATION):
            return False
        log.info("transfer of %s decided by %s: %s", call.call_control_id, decision.rule, decision.reason)
        ctx.tx.add_decision(call.call_control_id, decision.rule, decision.reason, decision.evidence)
        ctx.publish("decision", call.call_control_id, rule=decision.rule, reason=decision.reason,
                    evidence=decision.evidence)
        if self._handoff and call.status != CallStatus.ANSWERING:
            # `stop: all`: said now, not queued behind the rest of a menu prompt the caller talked
            # over (Telnyx queues speech; the agent is already ringing).
            ctx.send("speak", call.call_control_id, f"{ESCALATION}:handoff",
                     **ctx.menu.speak(self._handoff), stop="all")
        self._dial_agent(ctx, call, 1, decision.reason, decision.rule)
        return True

    def next_agent(self, ctx: CallContext, call: CallRecord, failed: TransferRecord) -> bool:
        """After an agent did not pick up, try the next one; False when none is left."""
        attempt = failed.attempt + 1
        if attempt > len(self._agents) or not call.is_active:
            return False
        if not ctx.tx.claim(call.call_control_id, f"{ESCALATION}:{attempt}"):
            return True  # a concurrent delivery already moved on to this agent
        self._dial_agent(ctx, call, attempt, failed.reason, failed.rule)
        return True

    def _dial_agent(self, ctx: CallContext, call: CallRecord, attempt: int, reason: str,
                    rule: str) -> None:
        to = self._agents[attempt - 1]
        step = f"{ESCALATION}:{attempt}"
        params = {
            "to": to,
            "timeout_secs": self._timeout_s,
            "client_state": encode_client_state({"reason": reason[:120], "rule": rule,
                                                 "attempt": attempt}),
            "target_leg_client_state": encode_client_state(
                {"role": "agent", "caller": call.call_control_id, "attempt": attempt}),
        }
        if call.to_number:
            params["from_"] = call.to_number
        command = ctx.send("transfer", call.call_control_id, step, **params)
        now = time.time()
        ctx.tx.add_transfer(TransferRecord(
            call_control_id=call.call_control_id, attempt=attempt, to_number=to,
            command_id=command.command_id, reason=reason, rule=rule,
            status=TransferStatus.REQUESTED, requested_at=now, updated_at=now))
        ctx.publish("transfer", call.call_control_id, attempt=attempt, to=to,
                    status=TransferStatus.REQUESTED, reason=reason, rule=rule)
