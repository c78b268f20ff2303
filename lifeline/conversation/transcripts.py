"""A call's transcript from its feed: JSON, plain text and WebVTT, and batches of them."""

from __future__ import annotations

import html
from typing import Any

from lifeline.ivr.store import CallRecord, OutputStore
from lifeline.ivr.timefmt import iso, iso_or_none

# As in the `message` event's data; `analysis` (what the rules read) is null on the agent's lines
# and on lines stored before the feed carried it.
_MESSAGE_FIELDS = ("party", "text", "start", "end", "timing", "score", "label", "intents", "analysis",
                   "source_id")


def transcript(call: CallRecord, store: OutputStore) -> dict[str, Any]:
    """Both parties' words in order, with timing, scores and the listening pauses."""
    events = store.feed_for_call(call.call_control_id, ("message", "listening"))
    messages = [{k: e.data.get(k) for k in _MESSAGE_FIELDS} | {"id": e.id, "at": iso(e.created_at)}
                for e in events if e.kind == "message"]
    listening = [{"state": e.data.get("state"), "at": iso(e.created_at),
                  "offset": round(e.created_at - call.created_at, 3)}
                 for e in events if e.kind == "listening"]
    return {"call_control_id": call.call_control_id, "from": call.from_number, "to": call.to_number,
            "started_at": iso(call.created_at), "ended_at": iso_or_none(call.ended_at), "status": call.status,
            "outcome": call.outcome, "messages": messages, "listening": listening}


def as_text(doc: dict[str, Any]) -> str:
    """One line per message: `[mm:ss.s] party: text`."""
    # The numbers too come from the provider (a SIP From can hold a line break).
    lines = [f"Call {doc['call_control_id']} from {_one_line(doc['from'] or 'unknown')} to "
             f"{_one_line(doc['to'] or 'unknown')}, started {doc['started_at']}"]
    for m in doc["messages"]:
        lines.append(f"[{_clock(m['start'], sep='.', hours=False)}] {m['party']}: {_one_line(m['text'])}")
    return "\n".join(lines) + "\n"


def as_vtt(doc: dict[str, Any]) -> str:
    """WebVTT cues with the party as the voice (`<v caller>`)."""
    out = ["WEBVTT", ""]
    for n, m in enumerate(doc["messages"], 1):
        start = float(m["start"] or 0.0)
        end = max(float(m["end"] or 0.0), start + 0.5)  # a cue must end after it starts
        out += [str(n), f"{_clock(start)} --> {_clock(end)}",
                f"<v {m['party']}>{html.escape(_one_line(m['text']), quote=False)}", ""]
    return "\n".join(out)


def _one_line(text: str) -> str:
    """A message on one line: a line break in it would end a WebVTT cue early (a blank line) or
    pass for another party's line in the plain text."""
    return " ".join(text.split())


def _clock(seconds: float | None, sep: str = ".", hours: bool = True) -> str:
    ms = round(float(seconds or 0.0) * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    if not hours:
        return f"{h * 60 + m:02d}:{s:02d}{sep}{ms // 100}"
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def batch(store: OutputStore, since: float | None, until: float | None,
          after: tuple[float, str] | None, limit: int,
          settled_before: float) -> tuple[list[CallRecord], bool]:
    """Calls that started in [since, until) and ended before `settled_before`, in (start time, id)
    order, after the cursor, and whether the page stopped short at a call not yet settled.

    A page never passes a call still in progress, or one that ended too recently: words still
    being transcribed at the hang-up arrive after it, and a client that moved past the call would
    never come back for them. The wait also covers a call whose first write has not committed yet
    (on another instance) while later calls are read."""
    rows = store.calls_by_start(since, until, after, limit)
    for n, call in enumerate(rows):
        if call.is_active or (call.ended_at is not None and call.ended_at >= settled_before):
            return rows[:n], True
    return rows, False


__all__ = ["as_text", "as_vtt", "batch", "transcript"]
