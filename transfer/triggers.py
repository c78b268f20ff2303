"""Phrases that mean "let me talk to a person".

A stop-gap until the declarative rules engine: it matches whole words only, so "agentic" or
"personal" do not trigger it.
"""

from __future__ import annotations

import re

_ASKS_FOR_HUMAN = re.compile(
    r"\b(operator|agent|human|real person|a person|representative|someone real|supervisor)s?\b",
    re.IGNORECASE)


def asks_for_human(text: str) -> str | None:
    """The phrase with which the caller asks for a person, or None."""
    found = _ASKS_FOR_HUMAN.search(text)
    return found.group(1).lower() if found else None
