"""Per-key order with a bounded wait: work starts in the order it was queued for its key, but
never waits for the work before it longer than `hold_s` after it was queued.

The outbox sends each call's commands through one lane per call. Unlike `KeyedSerialExecutor`
(strict order, however long the head takes), a stuck head of a lane holds the work behind it
back by at most `hold_s`; after that the later work starts while the stuck one carries on.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class BoundedLanes:
    """Work of different keys runs in parallel; within a key it starts in order, each item waiting
    for the one before it to finish, or for `hold_s` after its own queueing, whichever comes first."""

    def __init__(self, max_workers: int, hold_s: float, name: str,
                 on_overtake: Callable[[str, float], None] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._hold_s = hold_s
        self._on_overtake = on_overtake
        # Per key: the event the newest queued item sets when it finishes (the next one waits on it).
        self._tails: dict[str, threading.Event] = {}
        self._busy = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, key: str, work: Callable[[], None]) -> None:
        """Queue work behind the key's earlier work; it runs in the submitter's context."""
        # The context carries the call being handled (ivr.scope) to the worker thread's log lines.
        work = functools.partial(contextvars.copy_context().run, work)
        done = threading.Event()
        with self._lock:
            ahead = self._tails.get(key)
            self._tails[key] = done
            self._busy += 1
        self._pool.submit(self._run, key, work, ahead, done, time.monotonic() + self._hold_s)

    def _run(self, key: str, work: Callable[[], None], ahead: threading.Event | None,
             done: threading.Event, deadline: float) -> None:
        try:
            if ahead is not None and not ahead.wait(max(0.0, deadline - time.monotonic())):
                if self._on_overtake is not None:
                    self._on_overtake(key, self._hold_s)
            work()
        except Exception:  # a failing item must not stall the ones behind it
            log.exception("background work for %s failed", key)
        finally:
            done.set()
            with self._lock:
                if self._tails.get(key) is done:
                    del self._tails[key]
                self._busy -= 1
                if self._busy == 0:
                    self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; with wait, finish what is queued first."""
        self._pool.shutdown(wait=wait)
