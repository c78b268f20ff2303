"""What this thread of work is handling: which call, and since when (for logs and metrics).

A scope is entered where an input for a call arrives (a webhook, a transcript, a sweep of the
call, a command being sent) and is carried by contextvars, so every log line written while
handling it names the call, and an escalation can be timed from the input that caused it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True)
class Scope:
    """One input being handled: the call it is about and when handling began (monotonic seconds)."""

    call_id: str | None
    started: float


_current: ContextVar[Scope | None] = ContextVar("lifeline_scope", default=None)


@contextmanager
def call_scope(call_id: str | None, started: float | None = None) -> Iterator[Scope]:
    """Handle an input for call_id; inner scopes keep the outer start time."""
    outer = _current.get()
    begun = started if started is not None else (outer.started if outer else time.monotonic())
    scope = Scope(call_id if call_id else (outer.call_id if outer else None), begun)
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def current() -> Scope | None:
    """The scope being handled in this context, if any."""
    return _current.get()


def current_call() -> str | None:
    """The call being handled in this context, if any."""
    scope = _current.get()
    return scope.call_id if scope else None
