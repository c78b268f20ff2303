"""A thread pool that runs work one item at a time per key, in the order it was submitted."""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class KeyedSerialExecutor:
    """Different keys run in parallel; the same key never runs two items at once."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix=name)
        self._queues: dict[str, deque[Callable[[], None]]] = {}
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)

    def submit(self, key: str, work: Callable[[], None]) -> None:
        """Queue work behind whatever is already queued for key; it runs in the submitter's context."""
        # The context carries the call being handled (lifeline.ivr.scope) to the worker thread's log lines.
        work = functools.partial(contextvars.copy_context().run, work)
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(work)
                return
            self._queues[key] = deque([work])
        self._pool.submit(self._drain, key)

    def _drain(self, key: str) -> None:
        while True:
            with self._lock:
                queue = self._queues[key]
                if not queue:
                    del self._queues[key]
                    self._idle.notify_all()
                    return
                work = queue[0]
            try:
                work()
            except Exception:  # a failing item must not stall the ones behind it
                log.exception("background work for %s failed", key)
            with self._lock:
                queue.popleft()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or running; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._queues, timeout)

    def shutdown(self, wait: bool = True) -> None:
        """Stop accepting work; with wait, finish what is queued first."""
        self._pool.shutdown(wait=wait)
