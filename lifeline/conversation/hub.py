"""Wake-ups for feed readers: in this process at once, from other processes through the store.

A wake-up carries no data: readers always go back to the store, so a lost or duplicated
notification can delay an event by at most one poll interval and never lose or repeat it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)
# OutputStore.listen_feed: calls its first argument at each notice until its second returns True.
Listen = Callable[[Callable[[], None], Callable[[], bool]], None]


class BackgroundLoop:
    """One daemon thread running `_run` until `stop()`: the lifecycle every feed helper shares."""

    thread_name = "lifeline-background"
    join_timeout_s = 3.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """Ask the loop to end and wait for it (bounded)."""
        self._stop.set()
        self._interrupt()
        if self._thread is not None:
            self._thread.join(timeout=self.join_timeout_s)

    def _interrupt(self) -> None:
        """Wake a loop that may be waiting on something other than its stop event."""

    def _run(self) -> None:
        raise NotImplementedError


class FeedHub:
    """A version counter and a condition: readers wait for the version to move past what they saw.

    It also counts the feed's streams (open now, and opened since start): the console shares one
    stream among a browser's tabs, and these are how that can be seen from the server.
    """

    def __init__(self, on_streams: Callable[[int], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._version = 0
        self._on_streams = on_streams  # told +1 and -1 as streams open and end (a metric)
        self.streams_open = 0
        self.streams_opened = 0

    @contextmanager
    def streaming(self) -> Iterator[None]:
        """Count one stream for as long as the block runs (until its client is found gone)."""
        with self._cond:
            self.streams_open += 1
            self.streams_opened += 1
        if self._on_streams is not None:
            self._on_streams(1)
        try:
            yield
        finally:
            with self._cond:
                self.streams_open -= 1
            if self._on_streams is not None:
                self._on_streams(-1)

    @property
    def version(self) -> int:
        """How many wake-ups there have been; pass it to wait()."""
        with self._cond:
            return self._version

    def wake(self) -> None:
        """New events are in the store."""
        with self._cond:
            self._version += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Block until a wake-up after `seen`, or the timeout; True when woken."""
        with self._cond:
            return self._cond.wait_for(lambda: self._version != seen, timeout)


class StoreListener(BackgroundLoop):
    """Hears the store's notice of each commit to the feed (PostgreSQL's NOTIFY) and wakes the hub."""

    thread_name = "lifeline-feed-listen"

    def __init__(self, listen: Listen, hub: FeedHub) -> None:
        super().__init__()
        self._listen = listen
        self._hub = hub
        self._delay = 0.5

    def _heard(self) -> None:
        # Listening (again): events may have been stored while it was not, so every notice wakes
        # the readers, the first one too; and the next failure is retried soon.
        self._delay = 0.5
        self._hub.wake()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen(self._heard, self._stop.is_set)
            except Exception as exc:  # noqa: BLE001 - a dropped connection: readers fall back to polling meanwhile
                log.warning("feed LISTEN connection failed (%s); retrying in %.1f s", exc, self._delay)
                self._stop.wait(self._delay)
                self._delay = min(self._delay * 2, 10.0)


class StorePoller(BackgroundLoop):
    """One cheap query per interval per process (`max(id)` of the feed), waking the hub when it grows.

    For stores without notifications (SQLite): events written by another process (a second
    gunicorn worker, `flask monitor`) reach this process's clients within one interval, at the
    same cost however many clients are connected.
    """

    thread_name = "lifeline-feed-poll"

    def __init__(self, last_id: Callable[[], int], hub: FeedHub, interval_s: float) -> None:
        super().__init__()
        self._last_id = last_id
        self._hub = hub
        self._interval_s = interval_s

    def _run(self) -> None:
        seen, failing = -1, False
        while not self._stop.wait(self._interval_s):
            try:
                last = self._last_id()
            except Exception:  # any failure: the store is down or broken; retry
                # Logged once per outage, not every interval: other processes' events wait until
                # the store answers again (this process's own still wake its clients at once).
                if not failing:
                    log.warning("the live feed cannot read the store; retrying every %.1f s",
                                self._interval_s, exc_info=True)
                failing = True
                continue
            if failing:
                log.info("the live feed reads the store again")
                failing = False
            if last != seen:
                if seen != -1:
                    self._hub.wake()
                seen = last
