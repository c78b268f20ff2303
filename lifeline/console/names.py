"""Readable names for what the store keeps as identifiers (statuses, outcomes, rules, causes,
intents, frustration levels)."""

from __future__ import annotations

from typing import Any

STATUS = {
    "answering": "Answering", "menu": "In the menu", "ending": "Saying goodbye",
    "transferring": "Being put through", "transferred": "With an agent",
    "voicemail": "Leaving a message", "dialing": "Dialling out", "analysing": "Listening (dial-out)",
    "ended": "Ended",
}
OUTCOME = {
    "transferred": "Put through to an agent", "no_agent": "No agent took the call",
    "completed": "Finished in the menu",
    "voicemail": "Left a message", "abandoned": "Hung up before being put through",
    "missed": "Hung up before Lifeline answered",
    "unanswered": "Not answered", "lost": "Lost (the provider no longer knew the call)",
}
MENU = {"_after_agents": "No agent answered: menu or message", "main": "Main menu"}
TRANSFER = {
    "requested": "Calling the agent", "ringing": "Agent's phone ringing", "connected": "Connected",
    "failed": "Agent did not answer", "cancelled": "Cancelled",
}
CAUSE = {
    "busy": "busy", "user_busy": "busy", "timeout": "no answer", "no_answer": "no answer",
    "call_rejected": "rejected", "originator_cancel": "the caller hung up first",
    "caller hung up": "the caller hung up", "no_outcome": "no outcome from the provider",
    "normal_clearing": "hung up", "unspecified": "reason unknown",
    "call_ended_90018": "the call had already ended", "call_ended": "the call had already ended",
    "hangup_before_initiated": "hung up before being answered",
    "lost": "the provider no longer knew the call",
    "dev_restart": "closed by a restart of flask dev",
    "dial_completed": "answered, but not connected (hung up during the whisper)",
}
LISTENING = {
    "paused": "Paused", "resumed": "Listening", "restarted": "Listening (stream restarted)",
    "lost": "Not listening (stream lost)",
}
RULE = {
    "caller_intent": "Asked for a person, to leave or to complain",
    "asks_for_human": "Asked for a person", "dtmf_0": "Pressed 0 for the operator",
    "one_angry_message": "One angry message", "annoyed_twice": "Annoyed twice",
    "negative_streak": "Unhappy twice in a row", "sharp_drop": "Sudden turn for the worse",
    "long_in_menu": "Long in the menu and unhappy", "keen_buyer": "Keen to buy",
}
INTENT = {
    "wants_person": "wants a person", "leave_or_cancel": "wants to leave or cancel",
    "legal_or_complaint": "complaint or legal threat", "bot_complaint": "fed up with the robot",
}
# The frustration class the rules read from a caller line (the likeliest of the three).
FRUSTRATION = {"calm": "Calm", "annoyed": "Annoyed", "angry": "Angry"}
PARTY = {"caller": "Caller", "agent": "Agent"}
RECORDING = {"pending": "being fetched", "kept": "kept", "failed": "fetch failed", "expired": "expired"}

_TABLES = {"status": STATUS, "outcome": OUTCOME, "menu": MENU, "transfer": TRANSFER, "cause": CAUSE,
           "listening": LISTENING, "rule": RULE, "intent": INTENT, "frustration": FRUSTRATION, "party": PARTY,
           "recording": RECORDING}


def humanize(name: str) -> str:
    """`long_in_menu` as "Long in menu": a fallback for names a table does not know."""
    words = name.strip("_").replace("_", " ").replace("-", " ").strip()
    return words[:1].upper() + words[1:] if words else name


def readable(kind: str, name: str | None) -> str:
    """The readable name of `name` in one of the tables (status, outcome, rule, ...)."""
    if name is None:
        return ""
    return _TABLES[kind].get(name) or humanize(name)


def for_script() -> dict[str, Any]:
    """Every table, for the live page's script (one source for both)."""
    return {kind: dict(table) for kind, table in _TABLES.items()}
