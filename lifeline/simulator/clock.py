"""A timer thread for the emulator: runs short callbacks at given monotonic times."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Timers:
    """One thread, one heap: cheaper than a threading.Timer per prompt, ring and gather."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="emulator-timers", daemon=True)
        self._thread.start()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run action at monotonic time `when` (at once if it is past)."""
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), action))
            self._cond.notify()

    def after(self, delay_s: float, action: Callable[[], None]) -> None:
        """Run action after delay_s seconds."""
        self.at(time.monotonic() + max(0.0, delay_s), action)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopped and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                _, _, action = heapq.heappop(self._heap)
            try:
                action()
            except Exception:  # one broken callback must not stop the emulator's clock
                log.exception("emulator timer callback failed")

    def stop(self) -> None:
        """Stop the thread; pending callbacks are dropped."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._thread.join(timeout=2)
