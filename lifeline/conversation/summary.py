"""The post-call summary, computed offline from the call's feed: no model, no network."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lifeline.ivr.store import CallRecord, StoredEvent
from lifeline.ivr.timefmt import iso

# Words that carry no topic. Short on purpose: words under four letters are skipped anyway.
_STOP = frozenset("""
about above after again against also because been before being below between both cannot could
didn does doing done down during each from further have having here hers herself himself into
itself just like more most much myself need only other ours over same should some such than that
their theirs them then there these they this those through under until very want were what when
where which while with would your yours yourself yeah okay please thank thanks hello going know
really right well sure will shall yes dont cant wont didnt isnt arent call calling today
""".split())
_WORD = re.compile(r"[a-z][a-z'-]{3,}")
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_QUESTION_START = re.compile(
    r"^(who|what|when|where|why|how|which|can|could|would|will|is|are|am|do|does|did|should|may|have|has)\b",
    re.IGNORECASE)
# Commitments and requests: "I'll send…", "call me back…", "please cancel…", "can you…".
_ACTION = re.compile(
    r"\b(i'll|i will|we'll|we will|i'm going to|let me|i can send|"
    r"call (?:me|you) back|please (?!hold\b)\w+|can you|could you|need (?:you )?to|make sure)\b",
    re.IGNORECASE)


def summarise(call: CallRecord, events: Sequence[StoredEvent]) -> dict[str, Any]:
    """Duration, outcome, transfer, sentiment arc per party, topics, questions and action items."""
    messages = [e for e in events if e.kind == "message"]
    decisions = [e.data for e in events if e.kind == "decision"]
    transfers = [e.data for e in events if e.kind == "transfer"]
    ended = call.ended_at or (events[-1].created_at if events else call.updated_at)
    arc: dict[str, list[dict[str, Any]]] = {}
    for m in messages:
        if m.data.get("score") is not None:
            arc.setdefault(m.data.get("party", "caller"), []).append(
                {"t": m.data.get("end"), "score": m.data["score"], "label": m.data.get("label")})
    decision = decisions[0] if decisions else None
    return {
        "call_control_id": call.call_control_id,
        "from": call.from_number, "to": call.to_number,
        "started_at": iso(call.created_at), "ended_at": iso(ended),
        "duration_s": round(ended - call.created_at, 1),
        "outcome": call.outcome or call.status,
        "transfer": None if decision is None else {
            "rule": decision.get("rule"), "reason": decision.get("reason"),
            "attempts": [t for t in transfers if t.get("status") in ("connected", "failed", "cancelled")]},
        "sentiment": {party: {"arc": points, "mean": round(sum(p["score"] for p in points) / len(points), 3),
                              "first": points[0]["score"], "last": points[-1]["score"]}
                      for party, points in arc.items()},
        "topics": topics([m.data.get("text", "") for m in messages]),
        "questions": [s for m in messages if m.data.get("party") == "caller"
                      for s in _sentences(m.data.get("text", "")) if _is_question(s)],
        "action_items": [{"party": m.data.get("party"), "text": s} for m in messages
                         for s in _sentences(m.data.get("text", "")) if _ACTION.search(s)],
        "messages": len(messages),
    }


def topics(texts: Sequence[str], limit: int = 5) -> list[str]:
    """The most frequent content words and word pairs; a pair wins over its words when it recurs."""
    words: Counter[str] = Counter()
    pairs: Counter[str] = Counter()
    for text in texts:
        tokens = [w.strip("'-").removesuffix("'s") for w in _WORD.findall(text.lower())]
        # A word still holding an apostrophe is a contraction (that's, don't, I've): never a topic.
        tokens = [w for w in tokens if w not in _STOP and len(w) >= 4 and "'" not in w]
        words.update(tokens)
        pairs.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False) if a != b)
    chosen: list[str] = [p for p, n in pairs.most_common() if n >= 2][:limit]
    covered = {w for p in chosen for w in p.split()}
    for word, _ in words.most_common():
        if len(chosen) >= limit:
            break
        if word not in covered:
            chosen.append(word)
    return chosen


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(text) if s.strip()]


def _is_question(sentence: str) -> bool:
    return sentence.endswith("?") or bool(_QUESTION_START.match(sentence))


def as_text(summary: dict[str, Any]) -> str:
    """The summary as a plain-text email body."""
    lines = [f"Call from {summary['from'] or 'unknown'} on {summary['started_at']}",
             f"Duration: {summary['duration_s']} s, outcome: {summary['outcome']}"]
    if summary["transfer"]:
        lines.append(f"Transferred by rule {summary['transfer']['rule']}: {summary['transfer']['reason']}")
    for party, s in summary["sentiment"].items():
        lines.append(f"Sentiment ({party}): first {s['first']:+.2f}, last {s['last']:+.2f}, "
                     f"mean {s['mean']:+.2f}")
    lines.append("Topics: " + (", ".join(summary["topics"]) or "none"))
    lines += ["", "Questions the caller asked:"] + [f"- {q}" for q in summary["questions"] or ["none"]]
    lines += ["", "Action items:"] + [f"- ({a['party']}) {a['text']}" for a in summary["action_items"]] \
        if summary["action_items"] else ["", "Action items:", "- none"]
    return "\n".join(lines) + "\n"
