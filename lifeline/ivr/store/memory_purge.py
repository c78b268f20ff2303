"""The retention purge on the in-memory tables (MemoryStore.purge_ended): the SQL batch's semantics."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection
from typing import TYPE_CHECKING

from .outputs import EMAIL_DUE, UNSETTLED
from .records import CallStatus, CommandStatus, PurgeBatch

if TYPE_CHECKING:
    from .memory import _Tables


def purge_ended(t: _Tables, ended_before: float, limit: int, after: tuple[float, str] | None,
                receivers: Collection[str], dry_run: bool) -> PurgeBatch:
    """Purge (or with `dry_run` count) one batch of calls that ended before `ended_before`."""
    found = sorted((c.ended_at, c.call_control_id) for c in t.calls.values()
                   if c.status == CallStatus.ENDED and c.ended_at is not None and c.ended_at < ended_before
                   and (after is None or (c.ended_at, c.call_control_id) > after))[:max(limit, 0)]
    rows: Counter[str] = Counter()
    if not found:
        # The calls are done: what is left of their age are held calls' events, and strays.
        known = {*t.calls, *(tr.agent_call_control_id for tr in t.transfers.values())}
        strays = [k for k, e in t.events.items() if e["received_at"] < ended_before
                  and (e["call_control_id"] is None or e["call_control_id"] not in known)]
        strays = strays if dry_run else strays[:max(limit, 0)]
        if not dry_run:
            for key in strays:
                del t.events[key]
        return PurgeBatch(rows={"events": len(strays)} if strays else {}, recordings=(), held=0, last=None)
    ids = {ccid for _, ccid in found}
    legs = {tr.agent_call_control_id: tr.call_control_id for tr in t.transfers.values()
            if tr.call_control_id in ids and tr.agent_call_control_id is not None}
    held = _owed(t, ids, legs, receivers)
    ids -= held
    both = ids | {leg for leg, call in legs.items() if call in ids}
    recordings = tuple(path for _, ccid in found if ccid in ids
                       for path in [t.calls[ccid].recording_path] if path)
    out = t.outputs
    doomed = {d.id for d in out.deliveries.values() if d.call_control_id in ids}
    rows["delivery_attempts"] += sum(1 for a in out.attempts if a.delivery_id in doomed)
    rows["deliveries"] += len(doomed)
    rows["feed"] += sum(1 for e in t.feed if e.call_control_id in ids)
    rows["summaries"] += sum(1 for ccid in out.summaries if ccid in ids)
    rows["messages"] += sum(1 for ccid, _ in t.messages if ccid in ids)
    rows["decisions"] += sum(1 for d in t.decisions if d["call_control_id"] in ids)
    rows["transfers"] += sum(1 for ccid, _ in t.transfers if ccid in ids)
    rows["commands"] += sum(1 for e in t.commands.values() if e.command.call_control_id in both)
    rows["claims"] += sum(1 for ccid, _ in t.claims if ccid in both)
    rows["events"] += sum(1 for e in t.events.values() if e["call_control_id"] in both)
    rows["calls"] += len(ids)
    if not dry_run:
        _tally(t, ids, both)
        t.purged_files.update((where, time.time()) for where in recordings if where not in t.purged_files)
        out.attempts[:] = [a for a in out.attempts if a.delivery_id not in doomed]
        out.deliveries = {k: d for k, d in out.deliveries.items() if k not in doomed}
        t.feed[:] = [e for e in t.feed if e.call_control_id not in ids]
        out.summaries = {k: s for k, s in out.summaries.items() if k not in ids}
        t.messages = {k: m for k, m in t.messages.items() if k[0] not in ids}
        t.decisions[:] = [d for d in t.decisions if d["call_control_id"] not in ids]
        t.transfers = {k: tr for k, tr in t.transfers.items() if k[0] not in ids}
        t.commands = {k: e for k, e in t.commands.items() if e.command.call_control_id not in both}
        t.claims = {k for k in t.claims if k[0] not in both}
        t.events = {k: e for k, e in t.events.items() if e["call_control_id"] not in both}
        t.calls = {k: c for k, c in t.calls.items() if k not in ids}
    return PurgeBatch(rows={k: n for k, n in rows.items() if n}, recordings=recordings, held=len(held),
                      last=found[-1])


def _tally(t: _Tables, ids: set[str], both: set[str]) -> None:
    """Add what is about to go to the purged counts, in the figures /metrics reads (StoreFigures)."""
    counts = {
        "ended_by_outcome": Counter(t.calls[ccid].outcome or "unknown" for ccid in ids),
        "decisions_by_rule": Counter(d["rule"] for d in t.decisions if d["call_control_id"] in ids),
        "transfers_by_status": Counter(tr.status for (ccid, _), tr in t.transfers.items() if ccid in ids),
        "rejected_commands": Counter("all" for e in t.commands.values() if e.command.call_control_id in both
                                     and e.status == CommandStatus.REJECTED),
    }
    for figure, found in counts.items():
        t.purged.setdefault(figure, Counter()).update(found)


def _owed(t: _Tables, ids: set[str], legs: dict[str, str], receivers: Collection[str]) -> set[str]:
    """Those of these calls with something still to go out: they are kept until it has gone."""
    held = {legs.get(e.command.call_control_id, e.command.call_control_id) for e in t.commands.values()
            if e.status == CommandStatus.PENDING and (e.command.call_control_id in ids
                                                      or e.command.call_control_id in legs)}
    out = t.outputs
    # Only a receiver still configured will ever send what is queued for it.
    held.update(d.call_control_id for d in out.deliveries.values()
                if d.call_control_id in ids and d.status in UNSETTLED and d.url in receivers)
    held.update(s.call_control_id for s in out.summaries.values()
                if s.call_control_id in ids and s.email_status in EMAIL_DUE)
    held.update(e.call_control_id for e in t.feed if e.call_control_id in ids and e.kind == "call.ended"
                and e.call_control_id not in out.summaries)  # its summary is still to be made
    cursors = [out.cursors[url] for url in receivers if url in out.cursors]
    if cursors:
        floor = min(cursors)
        held.update(e.call_control_id for e in t.feed if e.call_control_id in ids and e.id > floor)
    return held
