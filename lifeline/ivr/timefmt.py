"""Times as the HTTP API shows them: ISO-8601 in UTC (the store keeps epoch seconds)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

# Unix seconds of 9999-12-31: past it (or before its negative) no date can be shown or compared.
_EPOCH_MAX = 253402300799.0


def iso(epoch: float) -> str:
    """Epoch seconds as 2026-11-30T06:11:05.123Z."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_or_none(epoch: float | None) -> str | None:
    """`iso`, passing None through (a time not reached yet)."""
    return None if epoch is None else iso(epoch)


def iso_times(value: Any) -> Any:
    """A JSON-ready value with every number under a key ending in `_at` turned into ISO-8601."""
    if isinstance(value, dict):
        return {k: iso(v) if k.endswith("_at") and isinstance(v, int | float) and not isinstance(v, bool)
                else iso_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [iso_times(item) for item in value]
    return value


def parse_time(value: str) -> float:
    """ISO-8601 (`2026-11-30T06:11:05Z`, a date, an offset) or unix seconds, as epoch seconds.

    A time without a zone is taken as UTC. Raises ValueError for anything else, including
    `nan`, `inf` and numbers past any date a datetime can hold.
    """
    try:
        seconds = float(value)
    except ValueError:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if not math.isfinite(seconds) or abs(seconds) > _EPOCH_MAX:
        raise ValueError(f"{value!r} is not a time")
    return seconds
