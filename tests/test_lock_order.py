"""One lock order on PostgreSQL: the caller's hangup and an agent's failure never deadlock.

Both touch the caller's call row and its transfers. The agent side used to update `transfers`
and then lock the call row, while the caller's hangup locks the call row and then updates
`transfers`; racing, PostgreSQL killed one of them as a deadlock and Telnyx got a 503.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from flask import Flask

from lifeline import create_app
from lifeline.ivr.events import encode_client_state
from lifeline.ivr.store import CallRecord, CallStatus, TransferRecord, TransferStatus

from .conftest import AGENTS, WebhookFactory, postgres_schema, postgres_url_or_skip

PAIRS = 60
AT_ONCE = 10


@pytest.fixture
def pg_app(app_config: dict[str, object]) -> Iterator[Flask]:
    with postgres_schema(postgres_url_or_skip()) as url:
        application = create_app({**app_config, "DATABASE_URL": url}, migrate=True)
        yield application
        application.extensions["lifeline"].close()


def ringing_call(app: Flask, n: int) -> tuple[str, str]:
    """A caller whose transfer to the first agent is ringing; returns (caller, agent leg)."""
    caller, agent = f"v3:race-caller-{n}", f"v3:race-agent-{n}"
    now = time.time()
    with app.extensions["lifeline"].store.unit() as tx:
        tx.insert_call(CallRecord(call_control_id=caller, call_session_id=f"s-{n}", call_leg_id=f"l-{n}",
                                  from_number="+15551230001", to_number="+15550100000",
                                  status=CallStatus.TRANSFERRING, created_at=now, updated_at=now))
        tx.claim(caller, "transfer")
        tx.add_transfer(TransferRecord(call_control_id=caller, attempt=1, to_number=AGENTS.split(",")[0],
                                       command_id=f"cmd-{n}", reason="asked", rule="asks_for_human",
                                       status=TransferStatus.RINGING, requested_at=now, updated_at=now,
                                       agent_call_control_id=agent))
    return caller, agent


@pytest.mark.postgres
def test_caller_hangup_racing_agent_failure_never_deadlocks(pg_app: Flask, signed: WebhookFactory) -> None:
    pairs = [ringing_call(pg_app, n) for n in range(PAIRS)]
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver(body: bytes, headers: dict[str, str], barrier: threading.Barrier) -> None:
        client = pg_app.test_client()
        barrier.wait()
        code = client.post("/webhooks/telnyx", data=body, headers=headers).status_code
        with lock:
            statuses.append(code)

    for start in range(0, PAIRS, AT_ONCE):
        batch = pairs[start:start + AT_ONCE]
        barrier = threading.Barrier(2 * len(batch))
        threads = []
        for caller, agent in batch:
            agent_state = encode_client_state({"role": "agent", "caller": caller, "attempt": 1})
            for body, headers in (
                    signed("call.hangup", {"call_control_id": caller, "hangup_cause": "normal_clearing"}),
                    signed("call.hangup", {"call_control_id": agent, "hangup_cause": "busy",
                                           "client_state": agent_state})):
                threads.append(threading.Thread(target=deliver, args=(body, headers, barrier)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert statuses.count(200) == 2 * PAIRS, f"non-200 answers: {sorted(s for s in statuses if s != 200)}"
    store = pg_app.extensions["lifeline"].store
    for caller, _ in pairs:
        call = store.get_call(caller)
        assert call is not None and call.status == CallStatus.ENDED
        # Whichever came first, no agent is left ringing for a caller who is gone.
        open_transfers = [t for t in store.transfers(caller)
                          if t.status in (TransferStatus.REQUESTED, TransferStatus.RINGING)]
        assert open_transfers == []
