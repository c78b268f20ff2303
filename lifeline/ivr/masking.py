"""Masking of digit strings (card numbers, PINs, account numbers) before anything is stored.

A caller gives a number in many shapes: "4111 1111", "1,234", "4-1-1-1", "four one one one",
or one key at a time. Each run of four or more digits, counted across the separators people
and recognisers put between them, has every digit replaced by `#`; shorter runs ("press 1",
"room 101") stay readable. Keyed digits arrive one event each, so no single event shows a run:
a keyed digit is never stored at all (the handler acts on it; the audit keeps that a key came).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "#"
MIN_RUN = 4
_WORDS = "zero|oh|one|two|three|four|five|six|seven|eight|nine"
_TOKEN = rf"(?:\d+|(?:{_WORDS})\b)"
_SEPARATOR = r"(?:[ \t]*[,.\-/][ \t]*|[ \t]+)"
_RUN = re.compile(rf"(?<!\w){_TOKEN}(?:{_SEPARATOR}{_TOKEN})*", re.IGNORECASE)
_PART = re.compile(rf"\d|\b(?:{_WORDS})\b", re.IGNORECASE)


def mask_digits(text: str) -> str:
    """Mask every run of four or more digits, spoken or written, keeping the separators."""
    return _RUN.sub(_mask_run, text)


def _mask_run(match: re.Match[str]) -> str:
    run = match.group()
    if len(_PART.findall(run)) < MIN_RUN:
        return run
    return _PART.sub(MASK, run)


def masked_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The event payload as it is kept for audit: digit strings masked, keyed digits hidden."""
    kept = dict(payload)
    if "digit" in kept:
        # `digit` is one key of call.dtmf.received: masking by run length cannot see a PIN
        # typed 4-1-1-1 across four events, so no keyed digit is kept at all.
        kept["digit"] = MASK
    if isinstance(kept.get("digits"), str):
        kept["digits"] = mask_digits(kept["digits"])
    data = kept.get("transcription_data")
    if isinstance(data, dict) and isinstance(data.get("transcript"), str):
        kept["transcription_data"] = {**data, "transcript": mask_digits(data["transcript"])}
    return kept
