"""What the live page starts from: the calls up now and their feed so far, up to one feed id.

The page then follows the feed from that id (`/api/events?after=`), so no event falls between
the snapshot and the stream, and none is applied twice.
"""

from __future__ import annotations

import time
from typing import Any

from lifeline.ivr.store import OutputStore
from lifeline.ivr.timefmt import iso

LIVE_MAX = 200
ENDED_SHOWN = 8  # "Just ended": as many as the page keeps while it is open
ENDED_WITHIN_S = 15 * 60
_KINDS = ("message", "decision", "transfer", "listening")


def snapshot(store: OutputStore) -> dict[str, Any]:
    """The active calls (each with its feed events up to `after`) and `after`, the feed id to follow from."""
    after = store.feed_last_id()  # first: an event stored after this is streamed, not snapshotted
    calls = []
    for call in store.list_calls(limit=LIVE_MAX, active_only=True):
        events = [e.envelope() for e in store.feed_for_call(call.call_control_id, _KINDS) if e.id <= after]
        calls.append({"call_control_id": call.call_control_id, "from": call.from_number, "to": call.to_number,
                      "status": call.status, "menu": call.menu, "listening": call.listening,
                      "started_at": iso(call.created_at), "events": events})
    # "Just ended" as the page would have it had it been open: a reload must not empty it.
    now = time.time()
    recent = [c for c in store.list_calls(limit=LIVE_MAX)
              if c.ended_at is not None and now - c.ended_at <= ENDED_WITHIN_S]
    recent.sort(key=lambda c: c.ended_at or 0.0, reverse=True)
    ended = [{"call_control_id": c.call_control_id, "from": c.from_number, "outcome": c.outcome,
              "ended_at": iso(c.ended_at or now)} for c in recent[:ENDED_SHOWN]]
    return {"after": after, "calls": calls, "ended": ended}
