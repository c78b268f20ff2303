"""Per-key order with a bounded wait: work starts in the order it was queued for its key, and
waits for the work before it only a bounded time once that work has started.

The outbox sends each call's commands through one lane per call. Unlike `KeyedSerialExecutor`
(strict order, however long the head takes), a stuck item holds the one behind it back by at
most `hold_s` after the stuck one started; then the later one starts while the stuck one carries
on. A pair the caller names (`waits_fully`) keeps strict order instead.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
# A cap on every wait, so that no bug can park a thread for good (a command's own attempts,
# 4 x the 5 s timeout plus backoff, end well before it).
LONGEST_WAIT_S = 120.0


@dataclass
class _Item:
    """One queued piece of work, as the item behind it sees it."""

    tag: str
    started: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0


class BoundedLanes:
    """Work of different keys runs in parallel. Within a key, work starts in queue order; each item
    waits for the one before it to finish, but no longer than `hold_s` after that one started —
    unless `waits_fully(tag before, own tag)` says this pair must keep strict order."""

    def __init__(self, max_workers: int, hold_s: float, name: str,
                 on_overtake: Callable[[str, float], None] | None = None,
                 waits_fully: Callable[[str, str], bool] | None = None) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._hold_s = hold_s
        self._on_overtake = on_overtake
        self._waits_fully = waits_fully
        self._tails: dict[str, _Item] = {}  # per key: the newest queued item
        self._busy = 0
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running = threading.local()  # the item this worker thread is running

    def submit(self, key: str, work: Callable[[], None], tag: str = "") -> None:
        """Queue work behind the key's earlier work; it runs in the submitter's context."""
        # The context carries the call being handled (lifeline.ivr.scope) to the worker thread's log lines.
        work = functools.partial(contextvars.copy_context().run, work)
        mine = _Item(tag)
        with self._lock:
            ahead = self._tails.get(key)
            self._tails[key] = mine
            self._busy += 1
        self._pool.submit(self._run, key, work, ahead, mine)

    def _run(self, key: str, work: Callable[[], None], ahead: _Item | None, mine: _Item) -> None:
        try:
            if ahead is not None:
                self._wait_for(key, ahead, mine)
            mine.started_at = time.monotonic()
            mine.started.set()
            self._running.item = mine
            work()
        except Exception:  # a failing item must not stall the ones behind it
            log.exception("background work for %s failed", key)
        finally:
            self._running.item = None
            mine.started.set()
            mine.done.set()
            with self._lock:
                if self._tails.get(key) is mine:
                    del self._tails[key]
                self._busy -= 1
                if self._busy == 0:
                    self._idle.notify_all()

    def release(self) -> None:
        """From inside running work: the work behind it in its lane may start now, while this
        work finishes what no later item waits for (bookkeeping). Outside work: nothing."""
        item = getattr(self._running, "item", None)
        if item is not None:
            item.done.set()

    def _wait_for(self, key: str, ahead: _Item, mine: _Item) -> None:
        # Never start before the item ahead has (the pool is first-in first-out, so it is already
        # on a thread): two commands sent at once could reach Telnyx in either order.
        ahead.started.wait(LONGEST_WAIT_S)
        if self._waits_fully is not None and self._waits_fully(ahead.tag, mine.tag):
            ahead.done.wait(LONGEST_WAIT_S)
            return
        left = ahead.started_at + self._hold_s - time.monotonic()
        if not ahead.done.wait(max(0.0, left)) and self._on_overtake is not None:
            self._on_overtake(key, self._hold_s)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._busy == 0, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; with wait, finish what is queued first."""
        self._pool.shutdown(wait=wait)
