"""Make untrusted JSON and text safe for both databases and for JSON out.

Telnyx redelivers any webhook we answer with a 5xx, so a body that cannot be stored must be
refused (400) or cleaned here, never allowed to fail inside the database. The rules:
- NUL is removed (PostgreSQL text cannot hold it; dropping it keeps the caller's words);
- a lone UTF-16 surrogate becomes U+FFFD (neither database driver can encode it);
- NaN and ±Infinity are refused (JSON has no such numbers; one would blank the dashboard);
- nesting deeper than MAX_DEPTH is refused (no real event is nested more than a few levels).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from flask.json.provider import DefaultJSONProvider

from .errors import MalformedEvent

MAX_DEPTH = 32
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def whole_number(text: str) -> int | None:
    """A whole number written in ASCII digits only, else None: int() would also take "1_0", " 5"
    and "٣", and str.isdigit() takes "²", which int() refuses."""
    return int(text) if text.isascii() and text.isdigit() else None


def clean_text(value: str) -> str:
    """The text without NUL and with lone surrogates replaced, storable in SQLite and PostgreSQL."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    return _LONE_SURROGATE.sub("\ufffd", value)


def load_json(raw: bytes | str, what: str = "body") -> Any:
    """Parse untrusted JSON into clean values, or raise MalformedEvent saying what is wrong."""
    try:
        document = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError:
        raise MalformedEvent(f"{what} is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:  # not JSON, not UTF-8, or an int past Python's 4300-digit limit
        raise MalformedEvent(f"{what} is not JSON") from None
    return clean(document, what)


def clean(value: Any, what: str = "body") -> Any:
    """Clean every string of a parsed JSON value; refuse deep nesting and non-finite numbers."""
    # Iterative, so a hostile document cannot exhaust the stack while it is being cleaned.
    root: list[Any] = [value]
    stack: list[tuple[Any, Any, Any, int]] = [(root, 0, value, 0)]
    while stack:
        parent, key, item, depth = stack.pop()
        if isinstance(item, str):
            parent[key] = clean_text(item)
        elif isinstance(item, float) and not math.isfinite(item):
            raise MalformedEvent(f"{what} holds a number that is not finite")
        elif isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise MalformedEvent(f"{what} is nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                cleaned = {clean_text(k): v for k, v in item.items()}
                parent[key] = cleaned
                stack.extend((cleaned, k, v, depth + 1) for k, v in cleaned.items())
            else:
                stack.extend((item, i, v, depth + 1) for i, v in enumerate(item))
    return root[0]


def finite_or_none(value: float | None) -> float | None:
    """A float JSON and both databases can hold, or None."""
    return value if value is None or math.isfinite(value) else None


def _refuse_constant(name: str) -> Any:
    raise MalformedEvent(f"body holds {name}, a number that is not finite")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise MalformedEvent(f"body holds {literal[:20]}…, a number that is not finite (too large)")
    return number


class FiniteJSONProvider(DefaultJSONProvider):
    """Flask's JSON: out with NaN and ±Infinity written as null (a stored NaN must not break clients),
    in with the webhooks' rules (no deep nesting, no non-finite numbers, clean text)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Serialise, replacing non-finite floats with null."""
        return super().dumps(_finite(obj), **kwargs)

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a request's JSON as a webhook's is parsed; what cannot be is a ValueError, a 400.

        Flask's own parser lets a RecursionError through (a 500 for 3,000 nested brackets)."""
        try:
            return load_json(s)
        except MalformedEvent as exc:
            raise ValueError(str(exc)) from None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
