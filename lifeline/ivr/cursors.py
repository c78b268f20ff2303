"""Opaque page cursors over calls: a call's start time and id, the key both call listings sort by.

The calls API (newest first) and the transcript batches (oldest first) hand one out with a page
and take it back for the next, so a page never shifts when calls start in between.
"""

from __future__ import annotations

import base64
import binascii
import math
import re

from .errors import LifelineError
from .events import storable_id

_ALPHABET = re.compile(r"[A-Za-z0-9_-]+={0,2}")  # what encode_cursor writes, and nothing else
CURSOR_MAX = 1400  # base64 of a tag, a time, "|" and a call id of up to 255 characters of up to 4 bytes


class CursorError(LifelineError, ValueError):
    """A cursor that this server did not hand out."""


def encode_cursor(created_at: float, call_control_id: str, kind: str = "") -> str:
    """The cursor standing for this call's place in a listing; `kind` names the listing, so one
    listing's cursor is refused by another (whose order differs)."""
    # repr() keeps every bit of the float, so the call compares equal to itself when read back.
    text = f"{created_at!r}|{call_control_id}"
    return base64.urlsafe_b64encode(f"{kind}|{text}".encode() if kind else text.encode()).decode()


def decode_cursor(cursor: str, kind: str = "") -> tuple[float, str]:
    """The (created_at, call_control_id) a cursor of this listing stands for, or CursorError."""
    try:
        # The decoder itself skips what is not base64: without this, "<cursor>\r\n" would pass.
        if len(cursor) > CURSOR_MAX or not _ALPHABET.fullmatch(cursor):
            raise ValueError("not a cursor")
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        if kind:
            tag, _, text = text.partition("|")
            if tag != kind:
                raise ValueError("another listing's cursor")
        created, sep, ccid = text.partition("|")
        at = float(created)  # a tagged cursor given to an untagged listing fails here
        if not sep or not math.isfinite(at) or not storable_id(ccid):  # no call has such a time or id
            raise ValueError(cursor)
        return at, ccid
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise CursorError("cursor is not one this API returned: start again without it") from exc
