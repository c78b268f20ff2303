"""How long to wait before trying again: one doubling rule for every retry in Lifeline."""

from __future__ import annotations

import math

# Past 2**30 times the first wait every cap here has long been reached; capping the exponent keeps
# a retry count that runs for days from overflowing a float.
_MAX_DOUBLINGS = 30


def doubling(attempt: int, first_s: float, cap_s: float = math.inf) -> float:
    """The wait after the `attempt`-th failure (1 for the first): first_s, doubling, at most cap_s."""
    return min(first_s * 2.0 ** min(max(attempt - 1, 0), _MAX_DOUBLINGS), cap_s)


def command_backoff_s(attempt: int) -> float:
    """The pause after a provider command's failed attempt: 0.2 s, doubling, at most 2 s. Shared by
    every provider, since the exactly-once hold on a call is sized from it (`longest_send_s`)."""
    return doubling(attempt, 0.2, 2.0)
